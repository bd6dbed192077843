"""The emulator's catalogue of supported images (node agent SKUs) and VM sizes, read from packaged JSON."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Catalog:
    """Supported images and VM sizes (cores per VM, to check ``vmSize`` and the core quota)."""

    images: tuple[dict[str, Any], ...]
    vm_cores: dict[str, int]

    def supported_images(self) -> list[dict[str, Any]]:
        """Return the wire JSON of every supported image (copies; callers may change them)."""
        return [copy.deepcopy(image) for image in self.images]

    def find_image(self, reference: dict[str, Any], node_agent_sku_id: str) -> dict[str, Any] | None:
        """Find the catalogue entry matching an image reference and node agent SKU (case-insensitively).

        Args:
            reference: ``imageReference`` from a pool body (``version`` may be absent or ``latest``).
            node_agent_sku_id: ``nodeAgentSKUId`` from the pool body.

        Returns:
            The entry, or None when the combination is not supported.
        """
        for image in self.images:
            known = image["imageReference"]
            if image["nodeAgentSKUId"].lower() != str(node_agent_sku_id).lower():
                continue
            if all(str(reference.get(name, "")).lower() == known[name] for name in ("publisher", "offer", "sku")):
                return image
        return None

    def cores(self, vm_size: str) -> int | None:
        """Return the cores of a VM size (case-insensitive), None when unknown."""
        return self.vm_cores.get(vm_size.lower())


@cache
def load_catalog() -> Catalog:
    """Load the packaged catalogue once."""
    base = resources.files(__package__)
    images = json.loads((base / "images.json").read_text("utf-8"))
    sizes = json.loads((base / "vmsizes.json").read_text("utf-8"))
    return Catalog(images=tuple(images), vm_cores={name.lower(): int(cores) for name, cores in sizes.items()})
