"""Checks of ``containerConfiguration`` (pools) and ``containerSettings`` (tasks, start tasks).

Values keep the spelling they were sent in (enums are compared case-insensitively, as Batch does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch_emulator.errors import InvalidPropertyValue, MissingRequiredProperty
from batch_emulator.models.validation import optional_bool, optional_enum, optional_list, require_object, require_str
from batch_emulator.node.containers.runtime import RuntimeNotFoundError

if TYPE_CHECKING:
    from batch_emulator.models.account import Account

CONTAINER_TYPES = ("dockercompatible", "cricompatible")
WORKING_DIRECTORIES = ("taskworkingdirectory", "containerimagedefault")
BIND_MOUNT_SOURCES = ("shared", "startup", "vfsmounts", "task", "jobprep", "applications")
CONFIGURATION_PATH = "virtualMachineConfiguration.containerConfiguration"


def _optional_str(body: dict[str, Any], name: str, path: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidPropertyValue(f"{path}.{name}", value, "The value must be a string.")


def validate_registry(value: object, path: str) -> None:
    """Check a ``ContainerRegistryReference``: a password goes with a username; an identity is an object.

    Raises:
        BatchError: a malformed entry.
    """
    body = require_object(value, path)
    for name in ("registryServer", "username", "password"):
        _optional_str(body, name, path)
    if body.get("username") and not body.get("password"):
        raise MissingRequiredProperty(f"{path}.password")
    identity = body.get("identityReference")
    if identity is not None:
        require_object(identity, f"{path}.identityReference")


def validate_container_configuration(value: object) -> dict[str, Any]:
    """Check a pool's ``virtualMachineConfiguration.containerConfiguration``.

    Returns:
        The configuration.

    Raises:
        BatchError: a missing ``type``, an unknown type, or malformed image names or registries.
    """
    body = require_object(value, CONFIGURATION_PATH)
    require_str(body, "type", path=f"{CONFIGURATION_PATH}.type")
    optional_enum(body, "type", CONTAINER_TYPES, "dockercompatible", path=f"{CONFIGURATION_PATH}.type")
    names = optional_list(body, "containerImageNames", path=f"{CONFIGURATION_PATH}.containerImageNames")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise InvalidPropertyValue(
                f"{CONFIGURATION_PATH}.containerImageNames[{index}]", name, "An image name must be a non-empty string."
            )
    registries = optional_list(body, "containerRegistries", path=f"{CONFIGURATION_PATH}.containerRegistries")
    for index, registry in enumerate(registries):
        validate_registry(registry, f"{CONFIGURATION_PATH}.containerRegistries[{index}]")
    return body


def validate_container_settings(value: object, path: str) -> None:
    """Check a task's ``containerSettings``.

    Raises:
        BatchError: a missing ``imageName``, or a malformed registry, working directory or bind mount.
    """
    body = require_object(value, path)
    require_str(body, "imageName", path=f"{path}.imageName")
    _optional_str(body, "containerRunOptions", path)
    if body.get("registry") is not None:
        validate_registry(body["registry"], f"{path}.registry")
    optional_enum(
        body, "workingDirectory", WORKING_DIRECTORIES, "taskworkingdirectory", path=f"{path}.workingDirectory"
    )
    mounts = optional_list(body, "containerHostBatchBindMounts", path=f"{path}.containerHostBatchBindMounts")
    for index, mount in enumerate(mounts):
        label = f"{path}.containerHostBatchBindMounts[{index}]"
        entry = require_object(mount, label)
        require_str(entry, "source", path=f"{label}.source")
        optional_enum(entry, "source", BIND_MOUNT_SOURCES, "task", path=f"{label}.source")
        optional_bool(entry, "isReadOnly", False, path=f"{label}.isReadOnly")


def require_runtime(account: Account, config: dict[str, Any]) -> None:
    """Refuse a container pool when this machine has no working container runtime.

    Raises:
        InvalidPropertyValue: no runtime; the reason says what to install.
    """
    try:
        account.containers.get()
    except RuntimeNotFoundError as error:
        reason = f"{error} Then restart the local Batch service."
        raise InvalidPropertyValue(f"{CONFIGURATION_PATH}.type", config.get("type"), reason) from error
