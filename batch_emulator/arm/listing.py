"""``$filter`` and ``$select`` of the management plane's list operations, on rendered ARM resources.

The expressions are the data plane's OData subset (:mod:`batch_emulator.odata`) over ARM's property paths:
``properties/vmSize eq 'STANDARD_D2S_V3'``, ``name eq 'pool-1'``, ``familyName eq 'standardDSv3Family'``.
``$select`` names top-level properties under ``properties/`` (``properties/provisioningState``); the
resource's envelope (``id``, ``name``, ``type``, ``etag``) is always there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from batch_emulator.errors import InvalidQueryParameterValue
from batch_emulator.odata import dict_resolver, parse_filter

_SELECT_PREFIX = "properties/"


def filtered(resources: Iterable[dict[str, Any]], text: str | None) -> list[dict[str, Any]]:
    """The resources ``$filter`` keeps (all of them without one).

    Raises:
        InvalidQueryParameterValue: the expression does not parse.
    """
    predicate = parse_filter(text)
    return [r for r in resources if predicate is None or predicate(dict_resolver(r))]


def select_names(text: str | None) -> frozenset[str] | None:
    """The ``properties`` names a ``$select`` keeps (None: all).

    Raises:
        InvalidQueryParameterValue: an item that is not ``properties/<name>``.
    """
    if text is None or not text.strip():
        return None
    names = set()
    for item in (part.strip() for part in text.split(",")):
        name = item[len(_SELECT_PREFIX) :] if item.lower().startswith(_SELECT_PREFIX) else ""
        if not name or "/" in name:
            message = f"Select '{item}' is not valid: give top-level properties under properties/, comma-separated."
            raise InvalidQueryParameterValue("$select", text, message)
        names.add(name.lower())
    return frozenset(names)


def selected(resource: dict[str, Any], names: frozenset[str] | None) -> dict[str, Any]:
    """The resource with only the selected ``properties`` (names compared case-insensitively)."""
    if names is None:
        return resource
    properties = {k: v for k, v in resource.get("properties", {}).items() if k.lower() in names}
    return {**resource, "properties": properties}
