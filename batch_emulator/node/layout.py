"""Directory layout of an emulated node, as Batch lays it out on Linux, and the ``AZ_BATCH_*`` variables.

A node root holds ``shared/``, ``startup/`` (the start task: ``wd/``, ``stdout.txt``, ``stderr.txt``),
``fsmounts/`` and ``workitems/<job>/job-1/<task>/`` (``wd/``, ``stdout.txt``, ``stderr.txt``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from batch_emulator.node.spec import TaskRunSpec

SHARED_DIR = "shared"
STARTUP_DIR = "startup"
WORKITEMS_DIR = "workitems"
MOUNTS_DIR = "fsmounts"
APPLICATIONS_DIR = "applications"
VOLATILE_DIR = "volatile"
WORKING_DIR = "wd"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
# A single-run job (not a job schedule) always lives in "job-1" under its work item.
JOB_INSTANCE_DIR = "job-1"

# Node roots whose fixed directories were created: saves four mkdir calls per task.
_prepared_nodes: set[str] = set()


@dataclass(frozen=True, slots=True)
class TaskPaths:
    """Where one task's files live on its node."""

    task_dir: Path
    working_dir: Path
    stdout: Path
    stderr: Path


def ensure_node_layout(node_root: Path) -> None:
    """Create the fixed directories of a node (idempotent, cached per process).

    Args:
        node_root: The node's root directory (``AZ_BATCH_NODE_ROOT_DIR``).

    Raises:
        OSError: A directory cannot be created.
    """
    key = str(node_root)
    # One stat keeps the cache honest if something else deleted the node directory.
    if key in _prepared_nodes and os.path.isdir(os.path.join(key, SHARED_DIR)):
        return
    for name in (SHARED_DIR, STARTUP_DIR, WORKITEMS_DIR, MOUNTS_DIR, APPLICATIONS_DIR, VOLATILE_DIR):
        os.makedirs(os.path.join(key, name), exist_ok=True)
    _prepared_nodes.add(key)


def remove_node_layout(node_root: Path) -> None:
    """Delete a node's directory tree and forget that it was prepared (node removed or reimaged).

    Args:
        node_root: The node's root directory.
    """
    _prepared_nodes.discard(str(node_root))
    shutil.rmtree(node_root, ignore_errors=True)


def _check_segment(kind: str, value: str) -> str:
    """Refuse ids that would leave the node root; Batch ids are letters, digits, '-' and '_' anyway."""
    if not value or value in (".", "..") or "/" in value or "\x00" in value:
        raise ValueError(f"{kind} {value!r} cannot be used as a directory name")
    return value


def start_task_dir(node_root: Path) -> Path:
    """The start task's directory on a node (``AZ_BATCH_NODE_STARTUP_DIR``).

    Args:
        node_root: The node's root directory.

    Returns:
        ``<node_root>/startup``.
    """
    return node_root / STARTUP_DIR


def job_task_dir(node_root: Path, job_id: str, task_id: str) -> Path:
    """A job task's directory on a node (``AZ_BATCH_TASK_DIR``), e.g. for the task files API.

    Args:
        node_root: The node's root directory.
        job_id: The job id.
        task_id: The task id.

    Returns:
        ``<node_root>/workitems/<job>/job-1/<task>``.

    Raises:
        ValueError: An id is empty, ``.``/``..``, or contains ``/``.
    """
    return (
        node_root
        / WORKITEMS_DIR
        / _check_segment("job id", job_id)
        / JOB_INSTANCE_DIR
        / _check_segment("task id", task_id)
    )


def task_paths(spec: TaskRunSpec) -> TaskPaths:
    """Compute the task directory of a start task or job task.

    Args:
        spec: The task run.

    Returns:
        The task directory, its ``wd/`` and its ``stdout.txt``/``stderr.txt``.

    Raises:
        ValueError: A job task without ids, or an id that is not a single path segment.
    """
    if spec.kind == "start":
        task_dir = start_task_dir(spec.node_root)
    else:
        if spec.job_id is None or spec.task_id is None:
            raise ValueError("a job task needs job_id and task_id")
        task_dir = job_task_dir(spec.node_root, spec.job_id, spec.task_id)
    return TaskPaths(
        task_dir=task_dir,
        working_dir=task_dir / WORKING_DIR,
        stdout=task_dir / STDOUT_FILE,
        stderr=task_dir / STDERR_FILE,
    )


def create_task_dirs(paths: TaskPaths) -> None:
    """Create the task directory and its working directory (kept if they exist, as on a retry).

    Args:
        paths: From :func:`task_paths`.

    Raises:
        OSError: A directory cannot be created.
    """
    os.makedirs(paths.working_dir, exist_ok=True)


def batch_environment(spec: TaskRunSpec, paths: TaskPaths) -> dict[str, str]:
    """The ``AZ_BATCH_*`` variables Batch documents for a single-instance task on a Linux node.

    The scheduler passes the multi-instance and job preparation variables in ``environment_settings``;
    application package and deprecated certificate variables are not set (the emulator has neither).

    Args:
        spec: The task run.
        paths: From :func:`task_paths`.

    Returns:
        Variable name to value.
    """
    root = str(spec.node_root)
    env = {
        "AZ_BATCH_ACCOUNT_NAME": spec.account_name,
        "AZ_BATCH_ACCOUNT_URL": spec.batch_url,
        "AZ_BATCH_POOL_ID": spec.pool_id,
        "AZ_BATCH_NODE_ID": spec.node_id,
        "AZ_BATCH_NODE_IS_DEDICATED": "true",
        "AZ_BATCH_NODE_ROOT_DIR": root,
        "AZ_BATCH_NODE_SHARED_DIR": os.path.join(root, SHARED_DIR),
        "AZ_BATCH_NODE_STARTUP_DIR": os.path.join(root, STARTUP_DIR),
        "AZ_BATCH_NODE_STARTUP_WORKING_DIR": os.path.join(root, STARTUP_DIR, WORKING_DIR),
        "AZ_BATCH_NODE_MOUNTS_DIR": os.path.join(root, MOUNTS_DIR),
        "AZ_BATCH_TASK_DIR": str(paths.task_dir),
        "AZ_BATCH_TASK_WORKING_DIR": str(paths.working_dir),
    }
    if spec.kind == "job":
        env["AZ_BATCH_JOB_ID"] = spec.job_id or ""
        env["AZ_BATCH_TASK_ID"] = spec.task_id or ""
    return env
