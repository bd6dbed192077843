"""Run one task in a container: the container runtime's client runs where the task process would.

The client (``podman run``/``docker run``) is the watched child: its stdout and stderr are the task's
files, its exit code is the container's. A wall-clock expiry or a terminate kills the client and then
removes the container by its name, which is fixed per task attempt, so nothing keeps running.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import subprocess
import threading
from pathlib import Path

from batch_emulator.node.containers.images import forget_image, image_failure, image_present, pull_image
from batch_emulator.node.containers.runtime import ContainerRuntime
from batch_emulator.node.containers.settings import settings_refusal
from batch_emulator.node.containers.spec import TASK_WORKING_DIRECTORY, ContainerRunSpec
from batch_emulator.node.layout import (
    JOB_INSTANCE_DIR,
    MOUNTS_DIR,
    SHARED_DIR,
    STARTUP_DIR,
    WORKITEMS_DIR,
    TaskPaths,
)
from batch_emulator.node.process import ProcessOutcome, launch_process
from batch_emulator.node.spec import TaskRunSpec

#: ``podman run`` exits 125 when the run itself failed (bad option, name clash ...), not the command.
RUNTIME_ERROR_EXIT = 125
REMOVE_TIMEOUT_SECONDS = 120.0
APPLICATIONS_DIR = "applications"
JOB_PREP_DIR = "jobpreparation"
# Variables the client itself needs: a task value for these goes on the command line, not through the client.
_CLIENT_VARIABLES = frozenset({"PATH", "HOME", "CONTAINERS_CONF", "DOCKER_CONFIG", "DOCKER_HOST", "TMPDIR"})


def container_name(spec: TaskRunSpec) -> str:
    """The container's name, the same for every call about one attempt of one task.

    Args:
        spec: The task run.

    Returns:
        ``batch-<start|task id>-<12 hex of node and job>-<retry>-<attempt>``.
    """
    digest = hashlib.sha256(f"{spec.node_root}\0{spec.job_id}".encode()).hexdigest()[:12]
    what = "startup" if spec.kind == "start" else spec.task_id
    return f"batch-{what}-{digest}-{spec.retry_count}-{spec.attempt}"


def host_path(source: str, spec: TaskRunSpec, paths: TaskPaths) -> Path:
    """The node directory a ``containerHostBatchBindMounts`` source names.

    Args:
        source: ``Shared``, ``Startup``, ``VfsMounts``, ``Task``, ``JobPrep`` or ``Applications``.
        spec: The task run.
        paths: Its directories.

    Returns:
        The directory on the node (mounted at the same path in the container).
    """
    root = spec.node_root
    by_source = {
        "shared": root / SHARED_DIR,
        "startup": root / STARTUP_DIR,
        "vfsmounts": root / MOUNTS_DIR,
        "task": paths.task_dir,
        "applications": root / APPLICATIONS_DIR,
        "jobprep": root / WORKITEMS_DIR / (spec.job_id or "") / JOB_INSTANCE_DIR / JOB_PREP_DIR,
    }
    return by_source[source.lower()]


def _mount_args(spec: TaskRunSpec, container: ContainerRunSpec, paths: TaskPaths) -> list[str]:
    if container.bind_mounts is None:
        mounts = [(spec.node_root, False)]
    else:
        mounts = [(host_path(source, spec, paths), read_only) for source, read_only in container.bind_mounts]
        if not any(path == paths.task_dir for path, _ in mounts):
            mounts.append((paths.task_dir, False))  # the task's own directory is always there
    args: list[str] = []
    for path, read_only in mounts:
        path.mkdir(parents=True, exist_ok=True)
        args += ["-v", f"{path}:{path}" + (":ro" if read_only else "")]
    return args


def run_arguments(
    spec: TaskRunSpec, container: ContainerRunSpec, paths: TaskPaths, env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The client's argument vector (up to the image; the command line follows) and environment for one task.

    Task variables reach the container by name (``-e NAME``) from the client's environment, so their
    values never show on a command line, except names the client needs for itself.

    Args:
        spec: The task run.
        container: Its container settings.
        paths: Its directories.
        env: The task's variables (``environmentSettings`` and ``AZ_BATCH_*``).

    Returns:
        ``(argv, client environment)``.

    Raises:
        ValueError: ``containerRunOptions`` has unbalanced quotes.
    """
    runtime = container.runtime
    options = shlex.split(container.run_options, posix=True)
    # The client's attached stdout/stderr are the task's files, so the runtime keeps no log of its own.
    args = ["run", "--rm", "--name", container_name(spec), "--pull", "never", "--log-driver", "none"]
    if runtime.name == "podman":
        args.append("--replace")
    if not any(option.split("=", 1)[0] in ("--network", "--net") for option in options):
        args += ["--network", "host"]  # tasks reach Azurite and the service on 127.0.0.1, as processes do
    args += _mount_args(spec, container, paths)
    if container.working_directory == TASK_WORKING_DIRECTORY:
        args += ["-w", str(paths.working_dir)]
    client_extra: dict[str, str] = {}
    for name, value in env.items():
        if name in _CLIENT_VARIABLES:
            args += ["-e", f"{name}={value}"]
        else:
            args += ["-e", name]
            client_extra[name] = value
    args += options
    args.append(container.image)
    return runtime.argv(*args), runtime.client_env(client_extra)


def remove_container(runtime: ContainerRuntime, name: str) -> None:
    """Kill and remove a container by name (nothing happens if it is gone already).

    Args:
        runtime: The container runtime.
        name: From :func:`container_name`.
    """
    # docker's `rm` has no --time, and a podman behind `docker` would stop with a 10 s grace period: kill first.
    podman = runtime.name == "podman"
    calls = [("rm", "-f", "--time", "0", name)] if podman else [("kill", name), ("rm", "-f", name)]
    for args in calls:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            runtime.call(*args, timeout=REMOVE_TIMEOUT_SECONDS)


def runtime_error_line(path: Path) -> str:
    """The client's error from the end of the task's stderr: its last ``Error:`` line, else its last line."""
    try:
        with path.open("rb") as stream:
            stream.seek(max(0, path.stat().st_size - 4096))
            lines = [line.strip() for line in stream.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or [""])[-1]


def run_in_container(
    spec: TaskRunSpec, paths: TaskPaths, env: dict[str, str], cancel: threading.Event
) -> ProcessOutcome:
    """Run a task's command line in its container and wait for it (blocking).

    Args:
        spec: The task run; ``spec.container`` must be set.
        paths: Its directories (mounted at the same paths).
        env: The task's variables passed into the container.
        cancel: Set to end the task: the client is killed and the container removed.

    Returns:
        The container's exit code and, unless it exited 0, a wire ``failureInfo``.
    """
    container = spec.container
    assert container is not None
    error = pull_image(container.runtime, container.image, container.registries)
    if error is not None:
        return ProcessOutcome(None, "launch_error", image_failure(container.image, error))
    try:
        argv, client_env = run_arguments(spec, container, paths, env)
    except ValueError as bad:
        return ProcessOutcome(None, "launch_error", settings_refusal(str(bad)))
    outcome = launch_process(spec, paths, client_env, cancel, prefix=argv)
    if outcome.ended_by in ("timeout", "cancel"):
        remove_container(container.runtime, container_name(spec))
    elif outcome.ended_by == "exit" and outcome.exit_code == RUNTIME_ERROR_EXIT:
        message = runtime_error_line(paths.stderr) or f"{container.runtime.name} run exited {RUNTIME_ERROR_EXIT}"
        forget_image(container.runtime, container.image)
        if not image_present(container.runtime, container.image):  # removed since it was last seen
            return ProcessOutcome(outcome.exit_code, "exit", image_failure(container.image, message))
        return ProcessOutcome(outcome.exit_code, "exit", settings_refusal(message))
    return outcome


def container_environment(spec: TaskRunSpec, batch_env: dict[str, str]) -> dict[str, str]:
    """The variables a container task gets: its ``environmentSettings``, then the ``AZ_BATCH_*`` ones.

    PATH, HOME and the locale come from the image, as in Batch.

    Args:
        spec: The task run.
        batch_env: The ``AZ_BATCH_*`` variables.

    Returns:
        Name to value.
    """
    env = {setting["name"]: setting.get("value") or "" for setting in spec.environment_settings}
    env.update(batch_env)
    return env
