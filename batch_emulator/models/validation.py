"""Checks of request bodies, raising the Batch errors the service answers with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from batch_emulator.errors import InvalidPropertyValue, InvalidRequestBody, MissingRequiredProperty
from batch_emulator.timefmt import UNLIMITED_DURATION, format_duration, parse_duration

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_BOOLEAN_TEXT = {"true": True, "false": False}
MAX_ID_LENGTH = 64


def validate_id(value: object, name: str = "id") -> str:
    """Check a Batch id: letters, digits, hyphens and underscores, at most 64 characters.

    Args:
        value: The id from the body.
        name: The property name reported in errors.

    Returns:
        The id.

    Raises:
        MissingRequiredProperty: absent or empty.
        InvalidPropertyValue: wrong type, characters or length.
    """
    if value is None or value == "":
        raise MissingRequiredProperty(name)
    if not isinstance(value, str):
        raise InvalidPropertyValue(name, value, "The id must be a string.")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidPropertyValue(name, value, f"The id can be at most {MAX_ID_LENGTH} characters long.")
    if not _ID.match(value):
        raise InvalidPropertyValue(
            name, value, "The id can contain any combination of alphanumeric characters, hyphens and underscores."
        )
    return value


def id_key(value: str) -> str:
    """Return the lookup key of an id (Batch ids are unique case-insensitively)."""
    return value.lower()


def require_object(body: object, name: str = "body") -> dict[str, Any]:
    """Check that a JSON value is an object.

    Raises:
        InvalidRequestBody: it is not.
    """
    if not isinstance(body, dict):
        raise InvalidRequestBody(f"The {name} must be a JSON object.")
    return body


def require_str(body: Mapping[str, Any], name: str, *, path: str | None = None) -> str:
    """Return a required non-empty string property.

    Raises:
        MissingRequiredProperty: absent or empty.
        InvalidPropertyValue: not a string.
    """
    value = body.get(name)
    label = path or name
    if value is None or value == "":
        raise MissingRequiredProperty(label)
    if not isinstance(value, str):
        raise InvalidPropertyValue(label, value, "The value must be a string.")
    return value


def _store(body: Mapping[str, Any], name: str, value: Any) -> Any:
    """Write a value read as the service reads it back into a mutable body, so that it is kept as such.

    The service reads ``"2"`` as ``2`` and ``"True"`` as ``true`` (Azure CLI 2.91 sends integers as JSON
    strings) and renders what it read, not the text that was sent.
    """
    if isinstance(body, dict):
        body[name] = value
    return value


def optional_int(
    body: Mapping[str, Any],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    path: str | None = None,
) -> int:
    """Return an optional integer property within bounds (an integer in a JSON string is read as the integer).

    Raises:
        InvalidPropertyValue: not an integer or out of bounds.
    """
    value = body.get(name)
    label = path or name
    if value is None:
        return default
    if isinstance(value, str) and _INTEGER_TEXT.match(value):
        value = _store(body, name, int(value))
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPropertyValue(label, value, "The value must be an integer.")
    if minimum is not None and value < minimum:
        raise InvalidPropertyValue(label, value, f"The value must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise InvalidPropertyValue(label, value, f"The value must be at most {maximum}.")
    return value


def optional_bool(body: Mapping[str, Any], name: str, default: bool, *, path: str | None = None) -> bool:
    """Return an optional boolean property (``"true"``/``"false"`` in any case are read as booleans).

    Raises:
        InvalidPropertyValue: not a boolean.
    """
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT:
        value = _store(body, name, _BOOLEAN_TEXT[value.strip().lower()])
    if not isinstance(value, bool):
        raise InvalidPropertyValue(path or name, value, "The value must be a boolean.")
    return value


def optional_enum(
    body: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str, *, path: str | None = None
) -> str:
    """Return an optional enum property (compared case-insensitively, returned lower-case as Batch does).

    Raises:
        InvalidPropertyValue: not one of ``allowed``.
    """
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value.lower() not in allowed:
        raise InvalidPropertyValue(path or name, value, f"The value must be one of: {', '.join(allowed)}.")
    return value.lower()


def optional_duration_seconds(body: Mapping[str, Any], name: str, *, path: str | None = None) -> float | None:
    """Return an optional ISO-8601 duration property in seconds (designators in any case).

    The body keeps the duration as the service shows it back: ``PT01H00M00S`` becomes ``PT1H`` and
    ``P3Y6M4DT12H30M5S`` becomes ``P1279DT12H30M5S`` (recordings of schedules and of the Azure CLI).

    Raises:
        InvalidPropertyValue: not a duration, or negative.
    """
    value = body.get(name)
    if value is None:
        return None
    label = path or name
    try:
        delta = parse_duration(value.upper())
    except (ValueError, AttributeError) as error:
        raise InvalidPropertyValue(label, value, "The value must be an ISO-8601 duration.") from error
    seconds = delta.total_seconds()
    if seconds < 0:
        raise InvalidPropertyValue(label, value, "The duration must not be negative.")
    if value.upper() != UNLIMITED_DURATION:
        _store(body, name, format_duration(delta))
    return seconds


def optional_list(body: Mapping[str, Any], name: str, *, path: str | None = None) -> list[Any]:
    """Return an optional array property ([] when absent).

    Raises:
        InvalidPropertyValue: not an array.
    """
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPropertyValue(path or name, value, "The value must be an array.")
    return value


def validate_environment(settings: list[Any], path: str) -> None:
    """Check ``environmentSettings``: objects with a non-empty ``name``.

    Raises:
        InvalidPropertyValue: an entry is malformed.
        MissingRequiredProperty: an entry has no name.
    """
    for index, item in enumerate(settings):
        if not isinstance(item, dict):
            raise InvalidPropertyValue(f"{path}[{index}]", item, "Each setting must be an object.")
        require_str(item, "name", path=f"{path}[{index}].name")


def validate_resource_files(files: list[Any], path: str) -> None:
    """Check ``resourceFiles``: exactly one of httpUrl, storageContainerUrl, autoStorageContainerName each.

    Raises:
        InvalidPropertyValue: an entry is malformed.
    """
    sources = ("httpUrl", "storageContainerUrl", "autoStorageContainerName")
    for index, item in enumerate(files):
        label = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise InvalidPropertyValue(label, item, "Each resource file must be an object.")
        given = [name for name in sources if item.get(name)]
        if len(given) != 1:
            raise InvalidPropertyValue(
                label,
                sorted(item),
                "Exactly one of httpUrl, storageContainerUrl or autoStorageContainerName is required.",
            )
        if item.get("httpUrl") and not item.get("filePath"):
            raise MissingRequiredProperty(f"{label}.filePath")


#: Enum-valued properties of request bodies; the service reads their values case-insensitively and
#: answers with the lower-case spelling (``"scope": "Pool"`` comes back as ``"pool"``).
ENUM_PROPERTIES = frozenset(
    {
        "scope",
        "elevationLevel",
        "nodeFillType",
        "jobDefaultOrder",
        "nodeDeallocationOption",
        "onAllTasksComplete",
        "onTaskFailure",
        "targetNodeCommunicationMode",
        "caching",
        "storageAccountType",
        "uploadCondition",
        "loginMode",
        "dependencyAction",
        "jobAction",
        "computeNodeFillType",
    }
)


def normalise_enums(body: Any) -> Any:
    """Lower-case the values of enum properties anywhere in a request body (changed in place and returned)."""
    if isinstance(body, dict):
        for name, value in body.items():
            if name in ENUM_PROPERTIES and isinstance(value, str):
                body[name] = value.lower()
            else:
                normalise_enums(value)
    elif isinstance(body, list):
        for item in body:
            normalise_enums(item)
    return body
