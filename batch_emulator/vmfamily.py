"""VM size names as Azure spells them and the VM family (quota bucket) each size belongs to.

The catalogue keys sizes in lower case (``standard_d2s_v3``); Azure's SKU list spells them ``Standard_D2s_v3``
and counts their cores against a family quota named like ``standardDSv3Family``. Both follow from the name:
``Standard_<series letters><vCPUs><feature letters>[_v<N>]`` belongs to
``standard<SERIES LETTERS><FEATURE LETTERS>[v<N>]Family`` (``Standard_D2ds_v5`` -> ``standardDDSv5Family``).
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"^(?P<tier>standard|basic)_(?P<series>[a-z]+)(?P<cpus>\d+)(?P<features>[a-z]*)(?P<rest>.*)$")
_VERSION = re.compile(r"_v(\d+)$")


def sku_name(vm_size: str) -> str:
    """Azure's spelling of a VM size (``standard_d2s_v3`` -> ``Standard_D2s_v3``); unknown shapes title-cased."""
    match = _SIZE.match(vm_size.lower())
    if match is None:
        return vm_size
    tier, series, cpus, features, rest = match.group("tier", "series", "cpus", "features", "rest")
    return f"{tier.capitalize()}_{series.upper()}{cpus}{features}{rest}"


def vm_family(vm_size: str) -> str:
    """The quota family of a VM size (``standard_d2s_v3`` -> ``standardDSv3Family``).

    Args:
        vm_size: A size name in any case.

    Returns:
        The family name as Azure's quota lists spell it; for a name of another shape, ``<name>Family``.
    """
    match = _SIZE.match(vm_size.lower())
    if match is None:
        return f"{vm_size.lower()}Family"
    tier, series, features, rest = match.group("tier", "series", "features", "rest")
    version = _VERSION.search(rest)
    suffix = f"v{version.group(1)}" if version else ""
    return f"{tier}{series.upper()}{features.upper()}{suffix}Family"
