"""Jobs: creation, update, terminate, delete, disable/enable, and task counts."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import (
    ActiveJobAndScheduleQuotaReached,
    BatchError,
    Conflict,
    InvalidPropertyValue,
    JobExists,
    JobNotFound,
    JobScheduleWithSameIdExists,
    MissingRequiredProperty,
    OperationNotImplemented,
)
from batch_emulator.models import autopools, exit_conditions, job_tasks
from batch_emulator.models.dependencies import DependencyGraph
from batch_emulator.models.entity import Entity, find, refuse_in_state
from batch_emulator.models.job_tasks import JobTaskRuns
from batch_emulator.models.multi_instance import MultiInstanceRun
from batch_emulator.models.tasks import CLOSED_JOB_STATES, TASK_ENDED, add_manager_task, end_task
from batch_emulator.models.validation import (
    id_key,
    optional_bool,
    optional_duration_seconds,
    optional_enum,
    optional_int,
    optional_list,
    require_object,
    require_str,
    validate_environment,
    validate_id,
)

if TYPE_CHECKING:
    from batch_emulator.models.account import Account
    from batch_emulator.models.tasks import Task

ALL_TASKS_COMPLETE = ("noaction", "terminatejob")
TASK_FAILURE = ("noaction", "performexitoptionsjobaction")
DISABLE_OPTIONS = ("requeue", "terminate", "wait")
_COUNT_NAMES = ("active", "running", "completed", "succeeded", "failed")


class Job(Entity):
    """A job: its specification, state, tasks and the queue of tasks waiting for a node."""

    __slots__ = (
        "account",
        "auto_pool_id",
        "deps",
        "disable_option",
        "end_time",
        "in_flight",
        "multi_runs",
        "queue",
        "removed",
        "scheduling_error",
        "side_runs",
        "slot_counts",
        "spec",
        "task_counts",
        "task_seq",
        "tasks",
        "terminate_reason",
    )

    def __init__(self, account: Account, job_id: str, spec: dict[str, Any], seq: int, now: float) -> None:
        """Create an ``active`` job from a validated body (``spec`` excludes ``id``)."""
        super().__init__(job_id, seq, now)
        self.account = account
        self.spec = spec
        self.end_time: float | None = None
        self.terminate_reason: str | None = None
        self.disable_option: str | None = None
        self.tasks: dict[str, Task] = {}
        self.queue: deque[Task] = deque()
        self.task_seq = 0
        self.in_flight = 0  # task processes of this job still in the worker pool
        self.task_counts = dict.fromkeys(_COUNT_NAMES, 0)
        self.slot_counts = dict.fromkeys(_COUNT_NAMES, 0)
        self.removed = False
        self.deps = DependencyGraph(self) if spec.get("usesTaskDependencies") else None
        self.side_runs = JobTaskRuns()
        self.auto_pool_id: str | None = None
        self.scheduling_error: dict[str, Any] | None = None  # why the job could not be scheduled (its auto pool)
        self.multi_runs: dict[str, MultiInstanceRun] = {}  # task key → its latest multi-instance run

    @property
    def pool_id(self) -> str:
        """The id of the pool the job runs on (its auto pool's, if it has one)."""
        return self.auto_pool_id or str(self.spec["poolInfo"].get("poolId", ""))

    @property
    def auto_pool_spec(self) -> dict[str, Any] | None:
        """The job's ``autoPoolSpecification``, if it has one."""
        spec: dict[str, Any] | None = self.spec["poolInfo"].get("autoPoolSpecification")
        return spec

    @property
    def has_side_tasks(self) -> bool:
        """Whether the job has a job manager or a job preparation task (they constrain task placement)."""
        return bool(self.spec.get("jobPreparationTask") or self.spec.get("jobManagerTask"))

    @property
    def priority(self) -> int:
        """Scheduling priority (-1000..1000, higher first)."""
        return int(self.spec.get("priority", 0))

    @property
    def max_parallel_tasks(self) -> int:
        """Most tasks running at once (-1: no limit)."""
        return int(self.spec.get("maxParallelTasks", -1))

    @property
    def on_all_tasks_complete(self) -> str:
        """``noaction`` or ``terminatejob``."""
        return str(self.spec.get("onAllTasksComplete", "noaction"))

    def set_state(self, state: str, now: float) -> None:
        """Enter ``state``, remembering the previous one, and record the change."""
        self.enter_state(state, now)
        self.touch(now)
        self.account.changes.jobs.add(self)

    def count(self, task: Task, sign: int) -> None:
        """Add (``sign=1``) or remove (``-1``) a task's current state from the counters."""
        bucket = "running" if task.state in ("preparing", "running") else task.state
        self.task_counts[bucket] += sign
        self.slot_counts[bucket] += sign * task.required_slots
        if task.state == "completed":
            outcome = "succeeded" if task.result == "success" else "failed"
            self.task_counts[outcome] += sign
            self.slot_counts[outcome] += sign * task.required_slots

    def all_tasks_complete(self) -> bool:
        """True when no task is active, preparing or running (also when the job has no tasks)."""
        return self.task_counts["active"] == 0 and self.task_counts["running"] == 0


def validate_job_spec(data: dict[str, Any], owner: str = "job") -> dict[str, Any]:
    """Check a job body (or a schedule's ``jobSpecification``, ``owner="jobschedule"``) and return its spec.

    Raises:
        BatchError: a missing or invalid property (400).
    """
    pool_info = data.get("poolInfo")
    if pool_info is None:
        raise MissingRequiredProperty("poolInfo")
    pool_info = require_object(pool_info, "poolInfo")
    auto_pool = pool_info.get("autoPoolSpecification")
    if auto_pool is None:
        validate_id(require_str(pool_info, "poolId", path="poolInfo.poolId"), "poolInfo.poolId")
    _validate_updatable(data)
    optional_bool(data, "usesTaskDependencies", False)
    validate_environment(optional_list(data, "commonEnvironmentSettings"), "commonEnvironmentSettings")
    spec = {name: value for name, value in data.items() if name != "id"}
    if auto_pool is not None:
        spec["poolInfo"] = {"autoPoolSpecification": autopools.validate(auto_pool, owner=owner)}
    if data.get("jobManagerTask") is not None:
        job_retries = (data.get("constraints") or {}).get("maxTaskRetryCount", 0)
        spec["jobManagerTask"] = job_tasks.validate_manager(data["jobManagerTask"], job_retries)
    if data.get("jobPreparationTask") is not None:
        spec["jobPreparationTask"] = job_tasks.validate_preparation(data["jobPreparationTask"])
    if data.get("jobReleaseTask") is not None:
        spec["jobReleaseTask"] = job_tasks.validate_release(data["jobReleaseTask"], spec.get("jobPreparationTask"))
    job_tasks.check_manager_id(spec)
    for name, allowed in (("onAllTasksComplete", ALL_TASKS_COMPLETE), ("onTaskFailure", TASK_FAILURE)):
        if name in spec:
            spec[name] = optional_enum(data, name, allowed, allowed[0])
    return spec


def _validate_updatable(data: dict[str, Any]) -> None:
    optional_int(data, "priority", 0, minimum=-1000, maximum=1000)
    max_parallel = optional_int(data, "maxParallelTasks", -1, minimum=-1)
    if max_parallel == 0:
        raise InvalidPropertyValue("maxParallelTasks", 0, "The value must be -1 or greater than 0.")
    optional_bool(data, "allowTaskPreemption", False)
    optional_enum(data, "onAllTasksComplete", ALL_TASKS_COMPLETE, "noaction")
    optional_enum(data, "onTaskFailure", TASK_FAILURE, "noaction")
    constraints = data.get("constraints")
    if constraints is not None:
        constraints = require_object(constraints, "constraints")
        optional_duration_seconds(constraints, "maxWallClockTime", path="constraints.maxWallClockTime")
        optional_int(constraints, "maxTaskRetryCount", 0, minimum=-1, path="constraints.maxTaskRetryCount")
    optional_list(data, "metadata")


def create_job(account: Account, body: object, now: float) -> Job:
    """Validate a ``BatchJobCreateOptions`` body and add the job.

    Returns:
        The new ``active`` job (its pool need not exist: its tasks then stay active).

    Raises:
        BatchError: invalid body (400), unsupported feature (501), duplicate id or quota (409).
    """
    data = require_object(body)
    job_id = validate_id(data.get("id"))
    spec = validate_job_spec(data)
    key = id_key(job_id)
    if key in account.jobs:
        raise JobExists()
    if key in account.schedules:
        raise JobScheduleWithSameIdExists()
    active = sum(1 for job in account.jobs.values() if job.state != "completed")
    if active >= account.quotas.active_jobs:
        raise ActiveJobAndScheduleQuotaReached()
    return add_job(account, job_id, spec, now)


def add_job(
    account: Account,
    job_id: str,
    spec: dict[str, Any],
    now: float,
    *,
    schedule_pool_id: str | None = None,
    pool_error: BatchError | None = None,
) -> Job:
    """Add a job from a validated specification: the one path by which jobs are made (by ``create_job`` and by
    job schedules). Creates its auto pool (``poolLifetimeOption: job``) and its job manager task.

    Args:
        account: The account.
        job_id: The job's id (a schedule's jobs are ``<scheduleId>:job-<n>``).
        spec: The validated specification (``validate_job_spec``), owned by the job from now on.
        now: Current time.
        schedule_pool_id: For a job schedule's job whose auto pool has ``poolLifetimeOption: jobschedule``:
            the id of the schedule's auto pool.
        pool_error: Why the job's auto pool could not be created (a job schedule's job): as in Batch, the job
            is made ``completed``, with the error as its ``executionInfo.schedulingError``.

    Raises:
        BatchError: the auto pool cannot be created (its pool's own error).
    """
    auto_pool = spec["poolInfo"].get("autoPoolSpecification")
    pool_id = None
    if auto_pool is not None and auto_pool["poolLifetimeOption"] == "jobschedule":
        pool_id = schedule_pool_id  # the schedule's own auto pool (it creates and deletes it)
    elif auto_pool is not None and pool_error is None:
        pool_id = autopools.create_auto_pool(account, auto_pool, now).id
    job = Job(account, job_id, spec, account.next_seq(), now)
    job.auto_pool_id = pool_id
    account.jobs[job.key] = job
    if pool_error is not None:
        job.scheduling_error = scheduling_error(pool_error)
        job.end_time = now
        job.set_state("completed", now)
    elif spec.get("jobManagerTask"):
        add_manager_task(account, job, now)
    account.changes.jobs.add(job)
    account.pending_jobs.add(job)
    account.notify()
    return job


def scheduling_error(error: BatchError) -> dict[str, Any]:
    """A job's ``executionInfo.schedulingError`` for an error that kept it from being scheduled."""
    body: dict[str, Any] = {"category": "usererror", "code": error.code, "message": error.message}
    if error.values:
        body["details"] = [{"name": name, "value": value} for name, value in error.values]
    return body


def get_job(account: Account, job_id: str) -> Job:
    """Return a job by id (case-insensitive).

    Raises:
        JobNotFound: no such job.
    """
    return find(account.jobs, job_id, JobNotFound)


def check_modifiable(job: Job) -> None:
    """Refuse to change a job (or add tasks to it) that is being deleted or terminated, or is completed.

    Raises:
        Conflict: ``JobBeingDeleted``, ``JobBeingTerminated`` or ``JobCompleted`` (409).
    """
    refuse_in_state(job, CLOSED_JOB_STATES)


def update_job(account: Account, job_id: str, body: object, now: float, *, replace: bool) -> Job:
    """Apply ``PATCH /jobs/{id}`` (merge) or ``PUT /jobs/{id}`` (replace the updatable properties).

    Raises:
        BatchError: no such job, job not modifiable, invalid body.
    """
    data = require_object(body)
    job = get_job(account, job_id)
    check_modifiable(job)
    _validate_updatable(data)
    if data.get("networkConfiguration") is not None:
        raise OperationNotImplemented("updating the job networkConfiguration")
    if data.get("poolInfo") is not None:
        _change_pool(account, job, data["poolInfo"], now)
    updatable = (
        "priority",
        "maxParallelTasks",
        "allowTaskPreemption",
        "constraints",
        "onAllTasksComplete",
        "metadata",
    )
    for name in updatable:
        if name == "metadata" and data.get(name) == []:
            job.spec.pop(name, None)  # an empty list removes the metadata: the service then shows none
        elif name in data and data[name] is not None:
            value = data[name]
            if name == "onAllTasksComplete":
                value = str(value).lower()
            job.spec[name] = value
        elif replace:
            job.spec.pop(name, None)
    job.touch(now)
    account.changes.jobs.add(job)
    account.pending_jobs.add(job)
    account.notify()
    return job


def _require_disabled(job: Job) -> None:
    if job.state != "disabled":
        raise Conflict("The pool of a job can only be changed while the job is disabled.")


def _change_pool(account: Account, job: Job, value: object, now: float) -> None:
    """Apply the ``poolInfo`` of a job update, as the REST reference says: the pool changes only while the job
    is disabled (to another pool, or to a new auto pool, which is created now); of an auto pool specification
    only ``keepAlive`` can change, and only with ``poolLifetimeOption: job``. A job leaving its auto pool
    releases it (deleted unless ``keepAlive``). An unchanged ``poolInfo`` is accepted in any state.

    Raises:
        BatchError: an invalid ``poolInfo`` (400), or a change while the job is not disabled (409).
    """
    pool_info = require_object(value, "poolInfo")
    current = job.auto_pool_spec
    auto = pool_info.get("autoPoolSpecification")
    if auto is None:
        pool_id = validate_id(require_str(pool_info, "poolId", path="poolInfo.poolId"), "poolInfo.poolId")
        if current is None and id_key(pool_id) == id_key(job.pool_id):
            return
        _require_disabled(job)
        job_ended(job, now)  # the job leaves its auto pool, if it had one
        job.auto_pool_id = None
        job.spec["poolInfo"] = {"poolId": pool_id}
        return
    path = "poolInfo.autoPoolSpecification"
    if current is not None and current["poolLifetimeOption"] != "job":
        raise InvalidPropertyValue(path, "…", "The auto pool of a job schedule's job cannot be changed.")
    spec = autopools.validate(auto, owner="job")
    if current is not None:
        if {**spec, "keepAlive": None} != {**current, "keepAlive": None}:
            raise InvalidPropertyValue(path, "…", "Only keepAlive of the job's auto pool specification can change.")
        if spec["keepAlive"] != current["keepAlive"]:
            _require_disabled(job)
            current["keepAlive"] = spec["keepAlive"]
        return
    _require_disabled(job)
    job.auto_pool_id = autopools.create_auto_pool(account, spec, now).id
    job.spec["poolInfo"] = {"autoPoolSpecification": spec}


def terminate_job(account: Account, job_id: str, reason: str | None, now: float) -> Job:
    """Start terminating a job: running tasks are ended, active ones stay active and never run.

    Raises:
        BatchError: no such job, or it is being deleted, terminated or already completed (409).
    """
    job = get_job(account, job_id)
    check_modifiable(job)
    begin_termination(job, reason or "UserTerminate", now)
    return job


def begin_termination(job: Job, reason: str, now: float) -> None:
    """Move a job to ``terminating``; the scheduler completes it once its processes have stopped."""
    job.terminate_reason = reason
    job.set_state("terminating", now)
    for task in list(job.tasks.values()):
        if task.state in ("preparing", "running"):
            end_task(task, now, TASK_ENDED)
    job.account.pending_jobs.add(job)
    job.account.notify()


def after_task_completed(task: Task, now: float) -> None:
    """A task's run completed: a job manager with ``killJobOnCompletion`` ends the job (``JMComplete``);
    otherwise take its exit condition's ``jobAction`` if the job's ``onTaskFailure`` is
    ``performexitoptionsjobaction`` (``terminate`` → reason ``TaskFailed``; ``disable`` → as with
    ``disableTasks: requeue``)."""
    job = task.job
    if job_tasks.is_manager(task) and job.spec["jobManagerTask"].get("killJobOnCompletion", True):
        if job.state in ("active", "enabling", "disabling", "disabled"):
            begin_termination(job, "JMComplete", now)
        return
    if job.spec.get("onTaskFailure") != "performexitoptionsjobaction":
        return
    action = exit_conditions.for_task(task).job_action
    if action == "terminate" and job.state in ("active", "enabling", "disabling", "disabled"):
        begin_termination(job, "TaskFailed", now)
    elif action == "disable" and job.state in ("active", "enabling"):
        job.disable_option = "requeue"
        job.set_state("disabling", now)
        job.account.pending_jobs.add(job)
        job.account.notify()


def job_ended(job: Job, now: float) -> None:
    """A job completed or was deleted: delete its auto pool unless ``keepAlive``."""
    spec = job.auto_pool_spec
    if spec is not None and spec.get("poolLifetimeOption") == "job":
        autopools.release_auto_pool(job.account, spec, job.auto_pool_id, now)


def delete_job(account: Account, job_id: str, now: float) -> Job:
    """Mark a job ``deleting``; the scheduler stops its processes and removes it with its tasks.

    Raises:
        JobNotFound: no such job.
    """
    job = get_job(account, job_id)
    if job.state != "deleting":
        job.set_state("deleting", now)
        for task in job.tasks.values():
            if task.cancel is not None:
                task.cancel.set()
    account.pending_jobs.add(job)
    account.notify()
    return job


def disable_job(account: Account, job_id: str, body: object, now: float) -> Job:
    """Disable a job (``disableTasks``: requeue, terminate or wait for running tasks).

    Raises:
        BatchError: no such job, job not active, invalid body.
    """
    data = require_object(body)
    job = get_job(account, job_id)
    check_modifiable(job)
    option = optional_enum(data, "disableTasks", DISABLE_OPTIONS, "")
    if not option:
        raise MissingRequiredProperty("disableTasks")
    if job.state not in ("active", "enabling"):
        raise Conflict("The job is not active.")
    job.disable_option = option
    job.set_state("disabling", now)
    account.pending_jobs.add(job)
    account.notify()
    return job


def enable_job(account: Account, job_id: str, now: float) -> Job:
    """Enable a disabled job.

    Raises:
        BatchError: no such job, or it is not disabled (409).
    """
    job = get_job(account, job_id)
    check_modifiable(job)
    if job.state not in ("disabled", "disabling"):
        raise Conflict("The job is not disabled.")
    job.set_state("enabling", now)
    account.pending_jobs.add(job)
    account.notify()
    return job


def task_counts(job: Job) -> dict[str, Any]:
    """Return the ``taskcounts`` body: task and slot counts by state."""
    return {"taskCounts": dict(job.task_counts), "taskSlotCounts": dict(job.slot_counts)}
