"""VM extensions of nodes: the pool's ``virtualMachineConfiguration.extensions`` plus Batch's own node extension.

Nothing is installed; an extension is reported ``Creating`` while its node is being created and
``Succeeded`` afterwards, as the service reports a healthy node's extensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batch_emulator.errors import InvalidPropertyValue, NotFound
from batch_emulator.models.nodes import Node
from batch_emulator.models.validation import optional_list, require_object, require_str

#: The extension every Linux node of the service reports besides the pool's own.
BATCH_NODE_EXTENSION: dict[str, Any] = {
    "name": "batchNodeExtension",
    "publisher": "Microsoft.Azure.Extensions",
    "type": "CustomScript",
    "typeHandlerVersion": "2.0",
    "autoUpgradeMinorVersion": True,
}


class ExtensionNotFound(
    NotFound, code="ResourceNotFound", message="The specified extension does not exist on the node."
):
    """No extension of this name on the node (404 ``ResourceNotFound``)."""


@dataclass(frozen=True)
class NodeExtension:
    """One extension of a node and how far its provisioning is."""

    spec: dict[str, Any]  # the pool's VMExtension (wire JSON)
    provisioning_state: str  # "Creating" | "Succeeded"
    since: float  # when it reached that state


def validate_extensions(config: dict[str, Any]) -> None:
    """Check ``virtualMachineConfiguration.extensions``: name, publisher and type, unique names.

    Raises:
        BatchError: a malformed or duplicate extension (400).
    """
    path = "virtualMachineConfiguration.extensions"
    seen: set[str] = set()
    for index, item in enumerate(optional_list(config, "extensions", path=path)):
        label = f"{path}[{index}]"
        extension = require_object(item, label)
        name = require_str(extension, "name", path=f"{label}.name")
        require_str(extension, "publisher", path=f"{label}.publisher")
        require_str(extension, "type", path=f"{label}.type")
        if name.lower() in seen:
            raise InvalidPropertyValue(f"{label}.name", name, "Extension names must be unique in a pool.")
        seen.add(name.lower())


def node_extensions(node: Node) -> list[NodeExtension]:
    """Every extension of a node, the pool's first."""
    config = node.pool.spec.get("virtualMachineConfiguration") or {}
    specs = [*(config.get("extensions") or []), BATCH_NODE_EXTENSION]
    creating = node.state == "creating"
    since = node.allocation_time if creating else (node.last_boot_time or node.state_time)
    state = "Creating" if creating else "Succeeded"
    return [NodeExtension(spec, state, since) for spec in specs]


def find_extension(node: Node, name: str) -> NodeExtension:
    """Return one extension of a node by name (case-insensitive).

    Raises:
        ExtensionNotFound: no such extension.
    """
    for extension in node_extensions(node):
        if str(extension.spec.get("name", "")).lower() == name.lower():
            return extension
    raise ExtensionNotFound()
