"""From wire JSON (``containerSettings``, ``containerConfiguration``) to the runner's container records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batch_emulator.node.containers.runtime import ContainerRuntime
from batch_emulator.node.containers.spec import (
    CONTAINER_IMAGE_DEFAULT,
    TASK_WORKING_DIRECTORY,
    ContainerRunSpec,
    RegistryCredential,
)
from batch_emulator.node.failures import failure_info

INVALID_SETTINGS_CODE = "ContainerInvalidSettings"
INVALID_SETTINGS_MESSAGE = "At least one value of specified task container settings is invalid"


def registry_credential(value: Mapping[str, Any]) -> RegistryCredential:
    """One ``ContainerRegistryReference``.

    Args:
        value: Wire JSON (``registryServer``, ``username``, ``password``, ``identityReference``).

    Returns:
        The credential (``server`` empty for Docker Hub).
    """
    identity = value.get("identityReference") or {}
    return RegistryCredential(
        server=str(value.get("registryServer") or ""),
        username=value.get("username"),
        password=value.get("password"),
        identity=identity.get("resourceId") if isinstance(identity, Mapping) else None,
    )


def pool_registries(config: Mapping[str, Any]) -> tuple[RegistryCredential, ...]:
    """The ``containerRegistries`` of a pool's ``containerConfiguration``."""
    return tuple(registry_credential(item) for item in config.get("containerRegistries") or [])


def container_run_spec(
    runtime: ContainerRuntime, settings: Mapping[str, Any], config: Mapping[str, Any]
) -> ContainerRunSpec:
    """A task's container settings resolved against its pool's container configuration.

    Args:
        runtime: The machine's container runtime.
        settings: The task's ``containerSettings``.
        config: The pool's ``containerConfiguration``.

    Returns:
        The runner's record: the task's registry is tried before the pool's.
    """
    registries = pool_registries(config)
    if settings.get("registry"):
        registries = (registry_credential(settings["registry"]), *registries)
    mounts = settings.get("containerHostBatchBindMounts")
    directory = str(settings.get("workingDirectory") or TASK_WORKING_DIRECTORY)
    return ContainerRunSpec(
        runtime=runtime,
        image=str(settings["imageName"]),
        run_options=str(settings.get("containerRunOptions") or ""),
        working_directory=CONTAINER_IMAGE_DEFAULT
        if directory.lower() == CONTAINER_IMAGE_DEFAULT.lower()
        else TASK_WORKING_DIRECTORY,
        bind_mounts=None
        if mounts is None
        else tuple((str(item.get("source", "Task")), bool(item.get("isReadOnly", False))) for item in mounts),
        registries=registries,
    )


def settings_refusal(reason: str) -> dict[str, Any]:
    """The ``failureInfo`` of a task whose container settings cannot be used (it never starts)."""
    return failure_info("usererror", INVALID_SETTINGS_CODE, INVALID_SETTINGS_MESSAGE, Message=reason)
