"""The emulator's catalogue of supported images (node agent SKUs) and VM sizes, read from packaged JSON.

``images.json`` holds every image Azure Batch lists or has listed (retired ones included, with their
``batchSupportEndOfLife``); ``vmsizes.json`` every VM size with its cores, memory and GPUs. Both are data:
extend them without touching code.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

_IMAGE_KEYS = ("publisher", "offer", "sku")


@dataclass(frozen=True)
class VmSize:
    """One VM size: its Azure name, cores, memory and GPUs, and when Azure retired it (None: offered)."""

    name: str
    cores: int
    memory_mb: int
    gpus: int
    retired: str | None = None


@dataclass(frozen=True)
class Catalog:
    """Supported images and VM sizes (to check ``vmSize``, the image, and the core quota)."""

    images: tuple[dict[str, Any], ...]
    vm_sizes: dict[str, VmSize]

    def supported_images(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Return the wire JSON of every image the service lists (copies; callers may change them).

        Args:
            now: When given, images past their ``batchSupportEndOfLife`` are left out, as the service
                stops listing them (pools on them are still accepted).
        """
        return [copy.deepcopy(image) for image in self.images if now is None or not self.retired(image, now)]

    def find_image(self, reference: dict[str, Any]) -> dict[str, Any] | None:
        """Find the catalogue entry of an image reference (publisher, offer and sku, case-insensitively).

        Args:
            reference: ``imageReference`` from a pool body (``version`` may be absent or ``latest``).

        Returns:
            The entry, or None when the image is not one the service supports.
        """
        wanted = tuple(str(reference.get(name, "")).lower() for name in _IMAGE_KEYS)
        for image in self.images:
            known = image["imageReference"]
            if tuple(known[name].lower() for name in _IMAGE_KEYS) == wanted:
                return image
        return None

    @staticmethod
    def retired(image: dict[str, Any], now: datetime) -> bool:
        """Whether ``now`` is past the image's ``batchSupportEndOfLife``."""
        end = image.get("batchSupportEndOfLife")
        if not end:
            return False
        return datetime.fromisoformat(str(end).replace("Z", "+00:00")) <= now

    @property
    def vm_cores(self) -> dict[str, int]:
        """Cores per VM size, keyed by the lower-case size name."""
        return {key: size.cores for key, size in self.vm_sizes.items()}

    def vm_size(self, name: str) -> VmSize | None:
        """Return a VM size by name (case-insensitive), None when unknown."""
        return self.vm_sizes.get(name.lower())

    def cores(self, vm_size: str) -> int | None:
        """Return the cores of a VM size (case-insensitive), None when unknown."""
        size = self.vm_size(vm_size)
        return None if size is None else size.cores


@cache
def load_catalog() -> Catalog:
    """Load the packaged catalogue once."""
    base = resources.files(__package__)
    images = json.loads((base / "images.json").read_text("utf-8"))
    sizes = json.loads((base / "vmsizes.json").read_text("utf-8"))["sizes"]
    return Catalog(
        images=tuple(images),
        vm_sizes={
            name.lower(): VmSize(
                name, int(size["cores"]), int(size["memoryInMB"]), int(size["gpus"]), size.get("retired")
            )
            for name, size in sizes.items()
        },
    )
