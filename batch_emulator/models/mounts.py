"""Checks of a pool's ``mountConfiguration`` (what a node does with it: :mod:`batch_emulator.node.mounts`)."""

from __future__ import annotations

from typing import Any

from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.models.validation import optional_list, require_object, require_str

MOUNT_KINDS = (
    "azureBlobFileSystemConfiguration",
    "nfsMountConfiguration",
    "cifsMountConfiguration",
    "azureFileShareConfiguration",
)


def validate_mount_configuration(body: dict[str, Any]) -> None:
    """Check ``mountConfiguration``: each entry names exactly one file system, with its required properties.

    Raises:
        BatchError: a malformed entry (400).
    """
    for index, item in enumerate(optional_list(body, "mountConfiguration")):
        label = f"mountConfiguration[{index}]"
        entry = require_object(item, label)
        kinds = [kind for kind in MOUNT_KINDS if entry.get(kind)]
        if len(kinds) != 1:
            raise InvalidPropertyValue(label, sorted(entry), f"Give exactly one of: {', '.join(MOUNT_KINDS)}.")
        config = require_object(entry[kinds[0]], f"{label}.{kinds[0]}")
        require_str(config, "relativeMountPath", path=f"{label}.{kinds[0]}.relativeMountPath")
        if kinds[0] == "azureBlobFileSystemConfiguration":
            for name in ("accountName", "containerName"):
                require_str(config, name, path=f"{label}.{kinds[0]}.{name}")
            if not (config.get("sasKey") or config.get("accountKey") or config.get("identityReference")):
                raise InvalidPropertyValue(
                    f"{label}.{kinds[0]}", "…", "Give one of sasKey, accountKey or identityReference."
                )
