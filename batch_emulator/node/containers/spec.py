"""What the node runner needs to run one task in a container (no behaviour here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from batch_emulator.node.containers.runtime import ContainerRuntime

#: ``containerSettings.workingDirectory`` values (wire spelling).
TASK_WORKING_DIRECTORY = "taskWorkingDirectory"
CONTAINER_IMAGE_DEFAULT = "containerImageDefault"


@dataclass(frozen=True)
class RegistryCredential:
    """One ``containerRegistries`` entry (or a task's ``registry``)."""

    server: str  # "" means Docker Hub
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity: str | None = None  # identityReference.resourceId: recorded, no credential locally


@dataclass(frozen=True)
class ContainerRunSpec:
    """A task's ``containerSettings`` resolved against its pool's ``containerConfiguration``."""

    runtime: ContainerRuntime
    image: str
    run_options: str = ""
    working_directory: str = TASK_WORKING_DIRECTORY
    #: ``containerHostBatchBindMounts`` as (source, read-only); None mounts the whole node root read-write.
    bind_mounts: tuple[tuple[str, bool], ...] | None = None
    registries: tuple[RegistryCredential, ...] = ()  # the task's own registry first, then the pool's
