"""Reconcile: what exists against what is wanted, per input. Pure: the flow observes, these functions decide.

Outputs are the source of truth. For each input, in order:

1. its outputs are on disk and verified (recorded in the run's manifest, same size and SHA-256) → **done**;
2. its outputs are in the output container (the task's output list, and every listed blob with its size) →
   **download** them and verify;
3. its latest task is queued or running in a job that can still run it → **wait** (never a second copy);
4. otherwise a task must produce it → **submit** attempt *n + 1* (a new, deterministic task id): no task yet, the
   job ended before the task ran, the task succeeded but its outputs are not in storage (lost), or it failed;
   in the same run a task that failed (after Batch's own retries) or lost its outputs twice is given up instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

#: Job states in which a job accepts and runs tasks.
OPEN_JOB_STATES = frozenset({"active", "enabling"})
#: Task states before completion.
PENDING_TASK_STATES = frozenset({"active", "preparing", "running"})


class Action(StrEnum):
    """What happens to one input."""

    DONE = "done"
    DOWNLOAD = "download"
    WAIT = "wait"
    SUBMIT = "submit"
    GIVE_UP = "give-up"


@dataclass(frozen=True)
class TaskSeen:
    """One Batch task made for an input, as the service reported it."""

    task_id: str
    job_id: str
    attempt: int
    state: str  # active, preparing, running, completed
    job_open: bool  # the job can still run it
    result: str | None = None  # success, failure (completed tasks)
    exit_code: int | None = None
    failure: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def duration_seconds(self) -> float | None:
        """How long the task ran (its last try), or None."""
        if self.start_time is None or self.end_time is None:
            return None
        return round((self.end_time - self.start_time).total_seconds(), 3)

    def describe(self) -> str:
        """``task <id> failed (exit code 3: ...)`` and the like."""
        if self.state != "completed":
            return f"task {self.task_id} is {self.state}"
        if self.result == "success":
            return f"task {self.task_id} succeeded"
        detail = f"exit code {self.exit_code}" if self.exit_code is not None else "did not run"
        return f"task {self.task_id} failed ({detail}{': ' + self.failure if self.failure else ''})"


@dataclass(frozen=True)
class InputState:
    """What exists for one input."""

    key: str
    on_disk: bool = False
    in_storage: bool = False
    tasks: tuple[TaskSeen, ...] = ()

    @property
    def latest(self) -> TaskSeen | None:
        """The task of the highest attempt, or None."""
        return max(self.tasks, key=lambda t: t.attempt, default=None)

    @property
    def next_attempt(self) -> int:
        """The attempt number a new task for this input gets (never one already used)."""
        return max((t.attempt for t in self.tasks), default=-1) + 1


@dataclass(frozen=True)
class Decision:
    """What to do for one input, and why (shown in the log, the CLI, the summary and the manifest)."""

    key: str
    action: Action
    reason: str
    attempt: int | None = None  # for SUBMIT: the new attempt
    task: TaskSeen | None = None  # the latest task seen, if any


def decide(state: InputState, *, rerun_failed: bool = True, rerun_lost: bool = True) -> Decision:
    """Decide what to do for one input.

    Args:
        state: what exists for it.
        rerun_failed: resubmit a task that failed (true at the start of a run: a rerun retries failures; false after
            monitoring: Batch already retried it ``max_task_retries`` times in this run).
        rerun_lost: resubmit a task that succeeded but whose outputs are not in storage (false once this run already
            did so for the input).

    Returns:
        The decision.
    """
    latest = state.latest
    if state.on_disk:
        return Decision(state.key, Action.DONE, "outputs verified on disk", task=latest)
    if state.in_storage:
        return Decision(state.key, Action.DOWNLOAD, "outputs in the output container", task=latest)
    if latest is None:
        return Decision(state.key, Action.SUBMIT, "no task yet", attempt=state.next_attempt)
    if latest.state in PENDING_TASK_STATES:
        if latest.job_open:
            return Decision(state.key, Action.WAIT, f"{latest.describe()}", task=latest)
        reason = f"{latest.describe()} but its job {latest.job_id} has ended"
        return Decision(state.key, Action.SUBMIT, reason, attempt=state.next_attempt, task=latest)
    if latest.result == "success":
        reason = f"{latest.describe()} but its outputs are not in storage"
        if rerun_lost:
            return Decision(state.key, Action.SUBMIT, reason, attempt=state.next_attempt, task=latest)
        return Decision(state.key, Action.GIVE_UP, reason + " (twice in this run)", task=latest)
    if rerun_failed:
        return Decision(state.key, Action.SUBMIT, f"{latest.describe()}: running it again", state.next_attempt, latest)
    return Decision(state.key, Action.GIVE_UP, latest.describe(), task=latest)


def choose_job(jobs: Mapping[int, str]) -> tuple[int, bool]:
    """Which job new tasks go to: the run's newest job if it still accepts tasks, else the next generation.

    A completed or terminated job cannot take new tasks, so a rerun after one uses ``<run id>-2``, ``-3``, ...; a
    deleted job's id is free again.

    Args:
        jobs: generation → state of the run's jobs that exist.

    Returns:
        ``(generation, exists)``.
    """
    newest = max(jobs, default=0)
    if newest and jobs[newest] in OPEN_JOB_STATES:
        return newest, True
    return newest + 1, False


def summarise(decisions: list[Decision]) -> dict[str, int]:
    """How many inputs got each action (for the log line and the summary)."""
    counts = {action.value: 0 for action in Action}
    for decision in decisions:
        counts[decision.action.value] += 1
    return counts
