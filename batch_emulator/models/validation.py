"""Checks of request bodies, raising the Batch errors the service answers with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from batch_emulator.errors import InvalidPropertyValue, InvalidRequestBody, MissingRequiredProperty
from batch_emulator.timefmt import parse_duration

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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


def optional_int(
    body: Mapping[str, Any],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    path: str | None = None,
) -> int:
    """Return an optional integer property within bounds.

    Raises:
        InvalidPropertyValue: not an integer or out of bounds.
    """
    value = body.get(name)
    label = path or name
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPropertyValue(label, value, "The value must be an integer.")
    if minimum is not None and value < minimum:
        raise InvalidPropertyValue(label, value, f"The value must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise InvalidPropertyValue(label, value, f"The value must be at most {maximum}.")
    return value


def optional_bool(body: Mapping[str, Any], name: str, default: bool, *, path: str | None = None) -> bool:
    """Return an optional boolean property.

    Raises:
        InvalidPropertyValue: not a boolean.
    """
    value = body.get(name)
    if value is None:
        return default
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
    """Return an optional ISO-8601 duration property in seconds.

    Raises:
        InvalidPropertyValue: not a duration, or negative.
    """
    value = body.get(name)
    if value is None:
        return None
    label = path or name
    try:
        seconds = parse_duration(value).total_seconds()
    except (ValueError, AttributeError) as error:
        raise InvalidPropertyValue(label, value, "The value must be an ISO-8601 duration.") from error
    if seconds < 0:
        raise InvalidPropertyValue(label, value, "The duration must not be negative.")
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
