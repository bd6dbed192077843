"""Tasks: creation (single and collection), the task state machine, terminate, delete and reactivate.

A task is stored compactly: its create body as one JSON string plus a few scalars, so a finished task
costs well under 2 KB of memory.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import (
    BatchError,
    InvalidPropertyValue,
    JobBeingDeleted,
    JobBeingTerminated,
    JobCompleted,
    OperationNotImplemented,
    TaskCompleted,
    TaskExists,
    TaskNotFound,
)
from batch_emulator.models import dependencies, exit_conditions, job_tasks, multi_instance
from batch_emulator.models.containers import validate_container_settings
from batch_emulator.models.entity import Entity, find, refuse_in_state
from batch_emulator.models.validation import (
    id_key,
    optional_duration_seconds,
    optional_int,
    optional_list,
    require_object,
    require_str,
    validate_environment,
    validate_id,
    validate_resource_files,
)
from batch_emulator.usage import NO_USAGE, Usage

if TYPE_CHECKING:
    from batch_emulator.models.account import Account
    from batch_emulator.models.jobs import Job
    from batch_emulator.models.nodes import Node

TASK_STATES = ("active", "preparing", "running", "completed")
#: The states of a job that refuse new tasks and changes to the job, and the error each answers with.
CLOSED_JOB_STATES: dict[str, type[BatchError]] = {
    "completed": JobCompleted,
    "terminating": JobBeingTerminated,
    "deleting": JobBeingDeleted,
}
UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")
_COMPACT = (",", ":")

FAILURE_EXIT_CODE: dict[str, Any] = {
    "category": "usererror",
    "code": "FailureExitCode",
    "message": "The task exited with an exit code representing a failure",
    "details": [{"name": "Message", "value": "The task exited with an exit code representing a failure"}],
}
TASK_ENDED: dict[str, Any] = {
    "category": "usererror",
    "code": "TaskEnded",
    "message": "Task Was Ended by User Request",
    "details": [{"name": "Message", "value": "Task Was Ended by User Request"}],
}


_SHARED_FAILURES: dict[str, dict[str, Any]] = {}
_MAX_SHARED_FAILURES = 4096


def shared_failure(info: dict[str, Any]) -> dict[str, Any]:
    """Return one shared copy of equal ``failureInfo`` records (thousands of failed tasks often share one)."""
    key = json.dumps(info, sort_keys=True, separators=_COMPACT)
    found = _SHARED_FAILURES.get(key)
    if found is not None:
        return found
    if len(_SHARED_FAILURES) < _MAX_SHARED_FAILURES:
        _SHARED_FAILURES[key] = info
    return info


@dataclass(frozen=True)
class RunOutcome:
    """What one run of a task produced (times as Unix timestamps)."""

    exit_code: int | None
    result: str  # "success" | "failure"
    start_time: float
    end_time: float
    failure_info: dict[str, Any] | None
    usage: Usage = NO_USAGE  # what the run used (its wall time is end_time - start_time)


class Task(Entity):
    """One task of a job."""

    __slots__ = (
        "attempt",
        "cancel",
        "end_reason",
        "end_time",
        "exit_code",
        "failure_info",
        "job",
        "last_requeue_time",
        "last_retry_time",
        "max_retries",
        "max_wall",
        "node",
        "node_id",
        "pool_id",
        "removed",
        "requeue_count",
        "required_slots",
        "result",
        "retry_count",
        "spec",
        "start_time",
        "usage",
    )

    def __init__(self, job: Job, task_id: str, seq: int, spec: str, now: float) -> None:
        """Create an ``active`` task from its compact create body (``spec`` excludes ``id``)."""
        super().__init__(task_id, seq, now)
        self.job = job
        self.spec = spec
        self.required_slots = 1
        self.max_retries = 0
        self.max_wall: float | None = None
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.exit_code: int | None = None
        self.result: str | None = None
        self.failure_info: dict[str, Any] | None = None
        self.retry_count = 0
        self.requeue_count = 0
        self.last_retry_time: float | None = None
        self.last_requeue_time: float | None = None
        self.node_id: str | None = None
        self.pool_id: str | None = None
        self.node: Node | None = None
        self.attempt = 0
        self.cancel: threading.Event | None = None
        self.end_reason: dict[str, Any] | None = None
        self.removed = False
        self.usage = NO_USAGE  # what all its runs used (retries included)

    def body(self) -> dict[str, Any]:
        """The create body as sent (without ``id``)."""
        value: dict[str, Any] = json.loads(self.spec)
        return value

    def apply_limits(self, body: dict[str, Any]) -> None:
        """Derive the scheduling limits from the body and the job's constraints."""
        constraints = body.get("constraints") or {}
        job_constraints = self.job.spec.get("constraints") or {}
        retries = constraints.get("maxTaskRetryCount", job_constraints.get("maxTaskRetryCount", 0))
        self.max_retries = int(retries)
        self.max_wall = optional_duration_seconds(constraints, "maxWallClockTime")
        self.required_slots = int(body.get("requiredSlots", 1))


# --- creation ------------------------------------------------------------------------------------------------
def parse_task_body(body: object) -> tuple[str, dict[str, Any]]:
    """Validate a ``BatchTaskCreateOptions`` body.

    Returns:
        The task id and the body without ``id``.

    Raises:
        BatchError: invalid (400) or unsupported (501) content.
    """
    data = require_object(body, "task")
    task_id = validate_id(data.get("id"))
    require_str(data, "commandLine")
    validate_resource_files(optional_list(data, "resourceFiles"), "resourceFiles")
    validate_environment(optional_list(data, "environmentSettings"), "environmentSettings")
    for index, item in enumerate(optional_list(data, "outputFiles")):
        _validate_output_file(item, f"outputFiles[{index}]")
    constraints = data.get("constraints")
    if constraints is not None:
        constraints = require_object(constraints, "constraints")
        optional_duration_seconds(constraints, "maxWallClockTime", path="constraints.maxWallClockTime")
        optional_duration_seconds(constraints, "retentionTime", path="constraints.retentionTime")
        optional_int(constraints, "maxTaskRetryCount", 0, minimum=-1, path="constraints.maxTaskRetryCount")
    optional_int(data, "requiredSlots", 1, minimum=1)
    if data.get("containerSettings") is not None:
        validate_container_settings(data["containerSettings"], "containerSettings")
    for name, what in (("applicationPackageReferences", "application packages"),):
        if data.get(name):
            raise OperationNotImplemented(what)
    spec = {name: value for name, value in data.items() if name != "id"}
    if data.get("dependsOn") is not None:
        spec["dependsOn"] = dependencies.validate(data["dependsOn"])
    if data.get("exitConditions") is not None:
        spec["exitConditions"] = exit_conditions.validate(data["exitConditions"])
    if data.get("multiInstanceSettings") is not None:
        required = data.get("requiredSlots", 1)
        spec["multiInstanceSettings"] = multi_instance.validate(data["multiInstanceSettings"], required)
    return task_id, spec


def _validate_output_file(item: object, path: str) -> None:
    data = require_object(item, path)
    require_str(data, "filePattern", path=f"{path}.filePattern")
    destination = data.get("destination")
    container = destination.get("container") if isinstance(destination, dict) else None
    if not isinstance(container, dict):
        raise InvalidPropertyValue(f"{path}.destination", destination, "A container destination is required.")
    require_str(container, "containerUrl", path=f"{path}.destination.container.containerUrl")
    options = data.get("uploadOptions")
    condition = options.get("uploadCondition") if isinstance(options, dict) else None
    if not isinstance(condition, str) or condition.lower() not in UPLOAD_CONDITIONS:
        raise InvalidPropertyValue(
            f"{path}.uploadOptions.uploadCondition", condition, "Use tasksuccess, taskfailure or taskcompletion."
        )


def _check_job_accepts_tasks(job: Job) -> None:
    refuse_in_state(job, CLOSED_JOB_STATES)


def _check_against_job(job: Job, body: dict[str, Any]) -> None:
    """The task rules that depend on its job (dependencies enabled, exit option actions allowed)."""
    if body.get("dependsOn") is not None and job.deps is None:
        raise dependencies.TaskDependenciesNotSpecifiedOnJob()
    conditions = body.get("exitConditions")
    if conditions is not None:
        exit_conditions.check_against_job(
            conditions,
            uses_dependencies=job.deps is not None,
            on_task_failure=str(job.spec.get("onTaskFailure", "noaction")),
        )


def _new_task(account: Account, job: Job, task_id: str, body: dict[str, Any], now: float) -> Task:
    key = id_key(task_id)
    if key in job.tasks:
        raise TaskExists()
    job_tasks.check_task_id(job, task_id)
    _check_against_job(job, body)
    job.task_seq += 1
    task = Task(job, task_id, job.task_seq, json.dumps(body, separators=_COMPACT), now)
    task.apply_limits(body)
    job.tasks[task.key] = task
    job.count(task, 1)
    depends_on = body.get("dependsOn")
    if job.deps is None or depends_on is None or job.deps.register(task, depends_on):
        job.queue.append(task)
    account.changes.tasks.add(task)
    return task


def add_task(account: Account, job: Job, body: object, now: float) -> Task:
    """Add one task to a job.

    Raises:
        BatchError: invalid body, duplicate id, or a job that takes no tasks.
    """
    _check_job_accepts_tasks(job)
    task_id, data = parse_task_body(body)
    task = _new_task(account, job, task_id, data, now)
    job.touch(now)
    account.pending_jobs.add(job)
    account.notify()
    return task


def add_manager_task(account: Account, job: Job, now: float) -> Task:
    """Add a new job's job manager task, first in its queue (``runExclusive`` takes every slot of a node)."""
    manager = job.spec["jobManagerTask"]
    task_id, body = job_tasks.manager_task_body(manager)
    pool = account.pools.get(id_key(job.pool_id))
    if manager.get("runExclusive", True) and pool is not None:
        body["requiredSlots"] = pool.slots_per_node
    task = _new_task(account, job, task_id, body, now)
    if job.queue and job.queue[-1] is task:
        job.queue.pop()
        job.queue.appendleft(task)
    return task


def add_task_collection(account: Account, job: Job, bodies: list[Any], now: float) -> list[Task | BatchError]:
    """Add up to 100 tasks; each one succeeds or fails on its own (``addtaskcollection``).

    Returns:
        Per body, in order: the new task or the error that refused it.

    Raises:
        BatchError: the job takes no tasks (the whole request fails).
    """
    _check_job_accepts_tasks(job)
    outcomes: list[Task | BatchError] = []
    for body in bodies:
        try:
            task_id, data = parse_task_body(body)
            outcomes.append(_new_task(account, job, task_id, data, now))
        except BatchError as error:
            outcomes.append(error)
    job.touch(now)
    account.pending_jobs.add(job)
    account.notify()
    return outcomes


def get_task(job: Job, task_id: str) -> Task:
    """Return a task of a job by id (case-insensitive).

    Raises:
        TaskNotFound: no such task.
    """
    return find(job.tasks, task_id, TaskNotFound)


# --- state machine -------------------------------------------------------------------------------------------
def set_state(task: Task, state: str, now: float) -> None:
    """Move a task to ``state`` (set ``result`` first when completing), keeping the job's counters."""
    if state == task.state:
        return
    job = task.job
    job.count(task, -1)
    task.enter_state(state, now)
    job.count(task, 1)
    task.touch(now)
    job.account.changes.tasks.add(task)
    if state == "completed" and job.deps is not None:
        _release_dependents(task)


def _release_dependents(task: Task) -> None:
    """A task completed: queue the tasks that waited only for it, if its exit options satisfy them."""
    job = task.job
    assert job.deps is not None
    if not dependencies.satisfies_dependents(task):
        return
    released = [waiter for waiter in job.deps.satisfy(task.key) if waiter.state == "active"]
    if released:
        job.queue.extend(released)
        job.account.pending_jobs.add(job)
        job.account.notify()


def release_node(task: Task, now: float) -> None:
    """Free the slots a task holds on its node."""
    node = task.node
    if node is not None:
        node.tasks.discard(task)
        node.slots_used -= task.required_slots
        node.refresh_busy_state(now)
        task.node = None


def assign(task: Task, node: Node, now: float) -> int:
    """Place an active task on a node (state ``preparing``).

    Returns:
        The run token; results carrying an older token are stale.
    """
    task.attempt += 1
    task.node = node
    task.node_id = node.id
    task.pool_id = node.pool.id
    node.tasks.add(task)
    node.slots_used += task.required_slots
    node.refresh_busy_state(now)
    task.end_reason = None
    task.cancel = threading.Event()
    if task.retry_count:
        task.last_retry_time = now
    set_state(task, "preparing", now)
    return task.attempt


def mark_running(task: Task, token: int, now: float) -> bool:
    """Record that the task's process is starting; False when the run became stale."""
    if task.attempt != token or task.removed or task.state != "preparing":
        return False
    task.start_time = now
    task.end_time = None
    task.exit_code = None
    task.failure_info = None
    task.result = None
    set_state(task, "running", now)
    return True


def finish_run(task: Task, outcome: RunOutcome, now: float) -> bool:
    """Apply the outcome of a run: complete the task, or requeue it for a retry.

    Returns:
        True when the task completed, False when it went back to ``active`` for a retry.
    """
    node = task.node
    release_node(task, now)
    task.cancel = None
    if task.start_time is None:  # a run's startTime, once shown, never changes (terminate included)
        task.start_time = outcome.start_time
    task.end_time = outcome.end_time
    task.exit_code = outcome.exit_code
    task.usage = task.usage + replace(outcome.usage, wall=max(0.0, outcome.end_time - outcome.start_time))
    if node is not None:
        node.total_tasks_run += 1
        if outcome.result == "success" and task.end_reason is None:
            node.total_tasks_succeeded += 1
        task.job.account.changes.nodes.add(node)
    if task.end_reason is not None:
        task.result, task.failure_info = "failure", task.end_reason
    elif outcome.result == "success":
        task.result, task.failure_info = "success", None
    else:
        task.result, task.failure_info = "failure", shared_failure(outcome.failure_info or FAILURE_EXIT_CODE)
        if not _timed_out(outcome.failure_info) and (task.max_retries == -1 or task.retry_count < task.max_retries):
            task.retry_count += 1
            task.result = None
            set_state(task, "active", now)
            task.job.queue.appendleft(task)
            return False
    set_state(task, "completed", now)
    return True


def _timed_out(info: dict[str, Any] | None) -> bool:
    """Whether a failure is a ``maxWallClockTime`` expiry (which Batch does not retry)."""
    if not info:
        return False
    details = info.get("details") or []
    return info.get("code") == "MaxWallClockTimeExpiry" or any(
        isinstance(item, dict) and item.get("value") == "MaxWallClockTimeExpiry" for item in details
    )


def end_task(task: Task, now: float, reason: dict[str, Any] = TASK_ENDED) -> None:
    """End a task by request: an active one completes now, a running one when its process has stopped."""
    if task.state == "completed":
        return
    if task.state == "active":
        task.result, task.failure_info = "failure", reason
        task.end_time = now
        set_state(task, "completed", now)
        return
    task.end_reason = reason
    if task.cancel is not None:
        task.cancel.set()


def requeue(task: Task, now: float, *, count: bool = True) -> None:
    """Put a preparing/running task back to ``active`` (its node went away); its old run becomes stale."""
    if task.state not in ("preparing", "running"):
        return
    release_node(task, now)
    task.attempt += 1
    if task.cancel is not None:
        task.cancel.set()
        task.cancel = None
    if count:
        task.requeue_count += 1
        task.last_requeue_time = now
    set_state(task, "active", now)
    task.job.queue.appendleft(task)


# --- requests ------------------------------------------------------------------------------------------------
def terminate_task(account: Account, job: Job, task_id: str, now: float) -> Task:
    """Terminate a task (``POST .../terminate``).

    Raises:
        TaskNotFound: no such task.
    """
    task = get_task(job, task_id)
    end_task(task, now)
    account.pending_jobs.add(job)
    account.notify()
    return task


def delete_task(account: Account, job: Job, task_id: str, now: float) -> Task:
    """Delete a task, stopping its process if it runs.

    Raises:
        TaskNotFound: no such task.
    """
    task = get_task(job, task_id)
    if task.cancel is not None:
        task.cancel.set()
    release_node(task, now)
    task.attempt += 1
    task.removed = True
    if job.deps is not None:
        job.deps.forget(task)
    job.multi_runs.pop(task.key, None)
    job.count(task, -1)
    del job.tasks[task.key]
    job.touch(now)
    account.changes.tasks.discard(task)
    account.changes.removals.append(("task", job.key, task.key))
    account.pending_jobs.add(job)
    account.notify()
    return task


def reactivate_task(account: Account, job: Job, task_id: str, now: float) -> Task:
    """Reactivate a failed completed task: back to ``active`` with its retry count reset.

    Raises:
        BatchError: no such task, or it is not a failed completed task (409).
    """
    task = get_task(job, task_id)
    _check_job_accepts_tasks(job)
    if task.state != "completed" or task.result != "failure":
        raise TaskCompleted(
            "Only a completed task whose result is failure can be reactivated.",
        )
    task.retry_count = 0
    task.exit_code = None
    task.failure_info = None
    task.start_time = task.end_time = None
    set_state(task, "active", now)
    task.result = None
    if job.deps is None or not job.deps.is_waiting(task):
        job.queue.append(task)
    account.pending_jobs.add(job)
    account.notify()
    return task


def replace_task(account: Account, job: Job, task_id: str, body: object, now: float) -> Task:
    """Replace a task's constraints (``PUT /jobs/{job}/tasks/{task}``).

    Raises:
        BatchError: no such task, invalid body.
    """
    data = require_object(body)
    task = get_task(job, task_id)
    constraints = require_object(data.get("constraints") or {}, "constraints")
    optional_duration_seconds(constraints, "maxWallClockTime", path="constraints.maxWallClockTime")
    optional_duration_seconds(constraints, "retentionTime", path="constraints.retentionTime")
    optional_int(constraints, "maxTaskRetryCount", 0, minimum=-1, path="constraints.maxTaskRetryCount")
    spec = task.body()
    spec["constraints"] = constraints
    task.spec = json.dumps(spec, separators=_COMPACT)
    task.apply_limits(spec)
    task.touch(now)
    account.changes.tasks.add(task)
    return task
