"""Execute one start task or job task on an emulated node: layout, resource files, command, output files."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch_emulator.node.containers.launch import container_environment, run_in_container
from batch_emulator.node.failures import failure_info
from batch_emulator.node.layout import TaskPaths, batch_environment, create_task_dirs, ensure_node_layout, task_paths
from batch_emulator.node.outputs import upload_output_files
from batch_emulator.node.process import ProcessOutcome, launch_process
from batch_emulator.node.resources import download_resource_files
from batch_emulator.node.spec import TaskRunResult, TaskRunSpec
from batch_emulator.node.transfer import map_storage_urls
from batch_emulator.usage import NO_USAGE, Usage

# A clean base like a fresh login on an Ubuntu node; no variable leaks in from the emulator's own process.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UTF8_LOCALE = "C.UTF-8"
# The one variable passed through from the emulator's environment: a local CA (e.g. for Azurite over HTTPS)
# that programs on the node must trust, as a real node trusts the public CAs.
PASSED_THROUGH = ("SSL_CERT_FILE",)


def task_environment(spec: TaskRunSpec, paths: TaskPaths) -> dict[str, str]:
    """The complete environment of the task's process.

    Base (``PATH``, ``HOME`` = the working directory, UTF-8 locale, and ``SSL_CERT_FILE`` if the emulator
    itself has it), then the task's ``environmentSettings`` (which may override the base), then the
    ``AZ_BATCH_*`` variables.

    Args:
        spec: The task run.
        paths: Its directories.

    Returns:
        Variable name to value.
    """
    env = {
        "PATH": BASE_PATH,
        "HOME": str(paths.working_dir),
        "LANG": UTF8_LOCALE,
        "LC_ALL": UTF8_LOCALE,
    }
    env.update({name: os.environ[name] for name in PASSED_THROUGH if os.environ.get(name)})
    for setting in spec.environment_settings:
        env[setting["name"]] = setting.get("value") or ""
    env.update(batch_environment(spec, paths))
    return env


def launch_container(
    spec: TaskRunSpec, paths: TaskPaths, env: dict[str, str], cancel: threading.Event
) -> ProcessOutcome:
    """Run the task's command line in its container: the launcher of tasks with ``containerSettings``.

    Same arguments as :func:`launch_process`; the container gets the task's own and ``AZ_BATCH_*`` variables
    of ``env``, not the host's base environment.
    """
    return run_in_container(spec, paths, container_environment(spec, batch_environment(spec, paths)), cancel)


def _result(
    spec_paths: TaskPaths,
    start: datetime,
    exit_code: int | None,
    info: dict[str, Any] | None,
    usage: Usage | None = None,
) -> TaskRunResult:
    return TaskRunResult(
        exit_code=exit_code,
        result="failure" if info is not None else "success",
        start_time=start,
        end_time=datetime.now(UTC),
        task_dir=spec_paths.task_dir,
        failure_info=info,
        usage=usage or NO_USAGE,
    )


def _written(directory: Path) -> Usage:
    """The files in ``directory`` as written I/O (the resource files a task downloaded)."""
    count = size = 0
    for root, _, names in os.walk(directory):
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            count += 1
    return Usage(write_ops=count, write_bytes=size)


def run_task(spec: TaskRunSpec, cancel: threading.Event) -> TaskRunResult:
    """Run one task to completion on its node (blocking; call it from a worker thread).

    Steps as on a Batch node: create the directories, download ``resourceFiles`` into ``wd/``
    (a failure skips the command), run the command line without a shell (as a process, or in the
    task's container when it has ``containerSettings``), upload ``outputFiles``
    whose condition matches (not after a cancel). ``start_time`` is taken before the downloads,
    as Batch does.

    Args:
        spec: What to run and where.
        cancel: Set it to end the task (terminate task/job): the process group is killed promptly.

    Returns:
        Exit code, result and wire ``failureInfo``, times, and the task directory.

    Raises:
        ValueError: The spec names a job task without ids, or ids that are not single path segments.
    """
    start = datetime.now(UTC)
    paths = task_paths(spec)
    try:
        ensure_node_layout(spec.node_root)
        create_task_dirs(paths)
    except OSError as error:
        message = f"Failure encountered creating the task directory {paths.task_dir}: {error.strerror}"
        return _result(paths, start, None, failure_info("servererror", "ResourceDirectoryCreateFailed", message))
    if spec.refusal is not None:
        return _result(paths, start, None, spec.refusal)
    env = task_environment(spec, paths)
    downloaded = NO_USAGE
    if spec.common_resource_files:
        failure = download_resource_files(
            map_storage_urls(spec.common_resource_files, spec.storage_endpoint), paths.task_dir, cancel
        )
        if failure is not None:
            return _result(paths, start, None, failure)
    if spec.resource_files:
        resource_files = map_storage_urls(spec.resource_files, spec.storage_endpoint)
        failure = download_resource_files(resource_files, paths.working_dir, cancel)
        downloaded = _written(paths.working_dir)
        if failure is not None:
            return _result(paths, start, None, failure, downloaded)
    launch = launch_process if spec.container is None else launch_container
    outcome = launch(spec, paths, env, cancel)
    info = outcome.failure_info
    if spec.output_files and outcome.ended_by in ("exit", "timeout"):
        upload_failure = upload_output_files(
            map_storage_urls(spec.output_files, spec.storage_endpoint),
            task_dir=paths.task_dir,
            working_dir=paths.working_dir,
            env=env,
            succeeded=info is None,
            cancel=cancel,
        )
        info = info or upload_failure
    return _result(paths, start, outcome.exit_code, info, downloaded + outcome.usage)
