"""Monitoring: wait for every task to complete, cheaply, and explain what failed."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

from azure.batch import BatchClient
from azure.batch import models as batchmodels
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batchpipe.clients import batch_client
from batchpipe.errors import PipelineFailed
from batchpipe.naming import wire_text
from batchpipe.redact import redact
from batchpipe.settings import Settings
from tasks._common import AZURE_RETRIES, azure_call

# Nodes in these states will never run our tasks: fail early instead of waiting for the timeout.
BROKEN_NODE_STATES = frozenset({"starttaskfailed", "unusable"})
LOG_TAIL_BYTES = 2048
MAX_REPORTED = 20


@dataclass(frozen=True)
class TaskCounts:
    """A snapshot of the job's task counts."""

    active: int
    running: int
    completed: int
    succeeded: int
    failed: int

    @property
    def total(self) -> int:
        return self.active + self.running + self.completed


@dataclass
class PollSchedule:
    """Poll interval with backoff: fast while things change, slower while nothing does."""

    initial: float
    maximum: float
    factor: float = 1.5
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def next_wait(self, changed: bool) -> float:
        self.current = self.initial if changed else min(self.maximum, self.current * self.factor)
        return self.current


@dataclass(frozen=True)
class FailedTask:
    """A task that ended with a failure, with the tails of its output files."""

    task_id: str
    exit_code: int | None
    failure: str
    stderr_tail: str
    stdout_tail: str


@dataclass(frozen=True)
class MonitorResult:
    """How the job ended: every task completed; which succeeded, which failed."""

    counts: TaskCounts
    failed: list[FailedTask]


def read_counts(client: BatchClient, job_id: str) -> TaskCounts:
    """One request: the job's task counts."""
    counts = client.get_job_task_counts(job_id).task_counts
    return TaskCounts(counts.active, counts.running, counts.completed, counts.succeeded, counts.failed)


def pool_nodes(client: BatchClient, pool_id: str) -> list[Any]:
    """One request: the pool's nodes with their state and start task information."""
    return list(client.list_nodes(pool_id, select=["id", "state", "startTaskInfo"]))


def broken_nodes(client: BatchClient, pool_id: str) -> list[Any]:
    """One request: nodes that can never run a task (start task failed, unusable)."""
    return [n for n in pool_nodes(client, pool_id) if wire_text(n.state) in BROKEN_NODE_STATES]


def allocation_failure(client: BatchClient, pool_id: str) -> str | None:
    """Why a pool without nodes will not get any (a quota, an unavailable size), or None while it still may.

    A pool whose allocation has settled with resize errors and no nodes would leave the tasks waiting until the
    monitoring timeout; real Batch reports core quota exhaustion this way (``AccountCoreQuotaReached``).
    """
    pool = client.get_pool(pool_id, select=["id", "allocationState", "resizeErrors"])
    errors = pool.resize_errors or []
    if wire_text(pool.allocation_state) != "steady" or not errors:
        return None
    hint = ""
    if any(str(e.code or "").endswith("QuotaReached") for e in errors):
        hint = " (the account quota is exhausted: free resources, e.g. idle pools, or request a quota increase)"
    reasons = "; ".join(f"{e.code}: {str(e.message or '').strip()}" for e in errors)
    return redact(f"pool {pool_id!r} has no nodes and cannot get any: {reasons}{hint}")


def fall_back_to_dedicated(client: BatchClient, pool_id: str, nodes: int) -> None:
    """Ask for dedicated nodes instead of the Spot nodes the pool could not get (the caller keeps polling)."""
    with azure_call("Batch", f"resizing pool {pool_id!r} to dedicated nodes"):
        client.begin_resize_pool(
            pool_id, batchmodels.BatchPoolResizeOptions(target_dedicated_nodes=nodes, target_low_priority_nodes=0)
        )


def file_tail(client: BatchClient, job_id: str, task_id: str, name: str) -> str:
    """The last bytes of a task's output file ('' when it does not exist)."""
    try:
        size = client.get_task_file_properties(job_id, task_id, name).content_length or 0
        start = max(0, size - LOG_TAIL_BYTES)
        data = b"".join(client.download_task_file(job_id, task_id, name, ocp_range=f"bytes={start}-{size - 1}"))
    except Exception:  # noqa: BLE001 - a missing log must not hide the failure we are reporting
        return ""
    return redact(data.decode("utf-8", "replace")).strip()


def start_task_stderr(client: BatchClient, pool_id: str, node_id: str) -> str:
    """The tail of a node's start task stderr ('' when unavailable)."""
    try:
        data = b"".join(client.download_node_file(pool_id, node_id, "startup/stderr.txt"))
    except Exception:  # noqa: BLE001 - best effort: the node state already says what happened
        return ""
    return redact(data[-LOG_TAIL_BYTES:].decode("utf-8", "replace")).strip()


def describe_failures(client: BatchClient, job_id: str) -> list[FailedTask]:
    """List failed tasks (one filtered request) and fetch their log tails."""
    failed = []
    tasks = client.list_tasks(job_id, filter="executionInfo/result eq 'failure'", select=["id", "executionInfo"])
    for item in tasks:
        info = item.execution_info
        failure = info.failure_info if info else None
        failed.append(
            FailedTask(
                task_id=item.id,
                exit_code=info.exit_code if info else None,
                failure=redact(f"{failure.code}: {failure.message}") if failure else "failed",
                stderr_tail=_tail_if_ran(client, job_id, item.id, "stderr.txt", info),
                stdout_tail=_tail_if_ran(client, job_id, item.id, "stdout.txt", info),
            )
        )
    return failed


def _tail_if_ran(client: BatchClient, job_id: str, task_id: str, name: str, info: Any) -> str:
    # Without an exit code the command never ran (e.g. an input could not be downloaded): there is no log to
    # read, and asking for it makes the SDK log a deserialization traceback for the 404.
    return file_tail(client, job_id, task_id, name) if info is not None and info.exit_code is not None else ""


def unfinished_tasks(client: BatchClient, job_id: str) -> list[str]:
    """Ids and states of tasks that have not completed."""
    return [
        f"{t.id} ({wire_text(t.state)})"
        for t in client.list_tasks(job_id, filter="state ne 'completed'", select=["id", "state"])
    ]


def _failures_markdown(job_id: str, failed: list[FailedTask], output_container: str) -> str:
    lines = [
        f"# Failed tasks of job `{job_id}`",
        "",
        f"Full logs are kept in the `{output_container}` container under `logs/<task id>/`.",
        "",
    ]
    for item in failed[:MAX_REPORTED]:
        lines += [
            f"## `{item.task_id}` (exit code {item.exit_code})",
            "",
            item.failure,
            "",
            "stderr (tail):",
            "```",
            item.stderr_tail or "(empty)",
            "```",
            "stdout (tail):",
            "```",
            item.stdout_tail or "(empty)",
            "```",
            "",
        ]
    if len(failed) > MAX_REPORTED:
        lines.append(f"... and {len(failed) - MAX_REPORTED} more.")
    return "\n".join(lines)


class _TerminalProgress:
    """A rich progress bar on an interactive terminal; nothing otherwise."""

    def __init__(self, total: int) -> None:
        self._progress: Any = None
        if sys.stderr.isatty():
            from rich.default_styles import DEFAULT_STYLES
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            from rich.theme import Theme

            from batchpipe.cli_support import log_console

            console = log_console()
            # Prefect's log console has a theme without rich's defaults: lend it the bar's styles while it shows.
            self._console = console
            console.push_theme(Theme({k: v for k, v in DEFAULT_STYLES.items() if k.startswith(("bar.", "progress."))}))
            self._progress = Progress(
                TextColumn("[bold]tasks"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                transient=True,
                console=console,  # one bar below the log lines, not a copy glued to each of them
            )
            self._task = self._progress.add_task("", total=total)
            self._progress.start()

    def update(self, counts: TaskCounts) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=counts.completed, description=f"running {counts.running}, failed {counts.failed}"
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._console.pop_theme()


@task(name="monitor-tasks", cache_policy=NO_CACHE, **AZURE_RETRIES)
def wait_for_tasks(settings: Settings, job_id: str, expected: int) -> MonitorResult:
    """Wait until every task of the job completed: two requests per poll (task counts, nodes; a third while the
    pool has no nodes at all: its resize errors).

    Args:
        settings: the run's settings (poll interval, backoff maximum, monitor timeout, pool id).
        job_id: the job.
        expected: number of tasks the job should have.

    Returns:
        The final counts and the failed tasks with their log tails.

    Raises:
        PipelineFailed: the timeout passed (lists the unfinished tasks), the pool's nodes cannot run tasks
            (with the start task's stderr), or the pool cannot get nodes at all (e.g. the core quota).
    """
    logger = get_run_logger()
    client = batch_client(settings)
    deadline = time.monotonic() + settings.monitor_timeout
    schedule = PollSchedule(settings.poll_interval, settings.max_poll_interval)
    progress_id = cast(UUID, create_progress_artifact(0.0, description=f"Tasks completed in job {job_id}"))
    terminal = _TerminalProgress(expected)
    last: TaskCounts | None = None
    fell_back = False
    try:
        while True:
            with azure_call("Batch", f"reading task counts of job {job_id!r}"):
                counts = read_counts(client, job_id)
            if counts != last:
                logger.info(
                    "Tasks: %d active, %d running, %d completed (%d succeeded, %d failed) of %d",
                    counts.active,
                    counts.running,
                    counts.completed,
                    counts.succeeded,
                    counts.failed,
                    expected,
                )
                update_progress_artifact(progress_id, 100.0 * counts.completed / max(expected, 1))
                terminal.update(counts)
            if counts.completed >= expected and counts.active == 0 and counts.running == 0:
                break
            if counts.completed < expected:
                with azure_call("Batch", f"listing nodes of pool {settings.pool_id!r}"):
                    nodes = pool_nodes(client, settings.pool_id)
                broken = [n for n in nodes if wire_text(n.state) in BROKEN_NODE_STATES]
                if broken:
                    _fail_on_broken_nodes(client, settings.pool_id, broken)
                if not nodes:
                    with azure_call("Batch", f"reading pool {settings.pool_id!r}"):
                        failure = allocation_failure(client, settings.pool_id)
                    if failure and settings.use_spot_nodes and settings.spot_fallback_to_dedicated and not fell_back:
                        logger.warning(
                            "No Spot capacity (%s): falling back to %d dedicated node(s)", failure, settings.node_count
                        )
                        fall_back_to_dedicated(client, settings.pool_id, settings.node_count)
                        fell_back = True
                    elif failure:
                        raise PipelineFailed(failure)
            if time.monotonic() >= deadline:
                with azure_call("Batch", f"listing unfinished tasks of job {job_id!r}"):
                    pending = unfinished_tasks(client, job_id)
                shown = ", ".join(pending[:MAX_REPORTED]) + (" ..." if len(pending) > MAX_REPORTED else "")
                raise PipelineFailed(
                    f"timed out after {settings.monitor_timeout:.0f}s with {len(pending)} tasks unfinished: {shown} "
                    "(raise BATCHPIPE_MONITOR_TIMEOUT, or rerun the same command to keep waiting)"
                )
            wait = schedule.next_wait(changed=counts != last)
            last = counts
            time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
    finally:
        terminal.close()
    failed: list[FailedTask] = []
    if counts.failed:
        with azure_call("Batch", f"listing failed tasks of job {job_id!r}"):
            failed = describe_failures(client, job_id)
        for item in failed:
            logger.error(
                "Task %s failed (exit code %s): %s\nstderr tail:\n%s",
                item.task_id,
                item.exit_code,
                item.failure,
                item.stderr_tail or "(empty)",
            )
        create_markdown_artifact(
            _failures_markdown(job_id, failed, settings.output_container),
            key="batchpipe-failed-tasks",
            description=f"Failed tasks of {job_id}",
        )
    return MonitorResult(counts=counts, failed=failed)


def _fail_on_broken_nodes(client: BatchClient, pool_id: str, broken: list[Any]) -> None:
    node = broken[0]
    info = node.start_task_info
    exit_code = info.exit_code if info else None
    if exit_code is None:
        # The command never ran (e.g. the node application could not be downloaded): say why, from failureInfo.
        failure = info.failure_info if info else None
        reason = " ".join(f"{failure.code}: {failure.message}".split()) if failure else "no failure information"
        what = f"the start task did not run: {redact(reason)}"
    else:
        stderr = start_task_stderr(client, pool_id, node.id)
        what = f"start task exit code {exit_code}; start task stderr: {stderr.splitlines()[-1] if stderr else '(none)'}"
    raise PipelineFailed(
        f"{len(broken)} node(s) of pool {pool_id!r} cannot run tasks: node {node.id} is {wire_text(node.state)}"
        f" ({what})"
    )
