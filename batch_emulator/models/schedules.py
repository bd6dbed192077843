"""Job schedules: creation, update, disable/enable, terminate, delete, and the rules by which a schedule
makes jobs (``<scheduleId>:job-<n>``) from its ``jobSpecification``.

Times here are real Unix timestamps. ``recurrenceInterval`` and ``startWindow`` are service-defined
intervals: the timer (:mod:`batch_emulator.schedule_timer`) converts them with the service clock.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from batch_emulator.clock import ServiceClock
from batch_emulator.errors import (
    ActiveJobAndScheduleQuotaReached,
    BatchError,
    InvalidPropertyValue,
    JobScheduleBeingDeleted,
    JobScheduleBeingTerminated,
    JobScheduleCompleted,
    JobScheduleExists,
    JobScheduleNotFound,
    JobWithSameIdExists,
    MissingRequiredProperty,
)
from batch_emulator.models import autopools
from batch_emulator.models.entity import Entity, find, refuse_in_state
from batch_emulator.models.jobs import Job, add_job, begin_termination, delete_job, validate_job_spec
from batch_emulator.models.validation import id_key, optional_list, require_object, validate_id
from batch_emulator.timefmt import format_duration, parse_duration, parse_iso

if TYPE_CHECKING:
    from batch_emulator.models.account import Account

#: The shortest ``recurrenceInterval`` and ``startWindow`` the service accepts (service seconds).
MIN_INTERVAL_SECONDS = 60.0
_UPDATABLE = ("schedule", "jobSpecification", "metadata")
_log = logging.getLogger(__name__)


class Schedule(Entity):
    """A job schedule and the jobs it has made."""

    __slots__ = (
        "auto_pool_id",
        "end_time",
        "job_counter",
        "job_keys",
        "last_due",
        "next_run",
        "removed",
        "spec",
    )

    def __init__(self, schedule_id: str, spec: dict[str, Any], seq: int, now: float) -> None:
        """Create an ``active`` schedule from a validated body (``spec`` excludes ``id``)."""
        super().__init__(schedule_id, seq, now)
        self.spec = spec
        self.end_time: float | None = None
        self.job_counter = 0
        self.job_keys: list[str] = []  # keys of the jobs made, oldest first
        self.last_due: float | None = None  # when the last job was due
        self.next_run: float | None = None  # when the next job is due; None: no more jobs
        self.removed = False
        self.auto_pool_id: str | None = None  # the pool of ``poolLifetimeOption: jobschedule``, once made

    @property
    def schedule(self) -> dict[str, Any]:
        """The ``schedule`` part (when jobs are made)."""
        value = self.spec.get("schedule")
        return value if isinstance(value, dict) else {}

    @property
    def recent_job_key(self) -> str | None:
        """Key of the most recent job made, if any."""
        return self.job_keys[-1] if self.job_keys else None

    def set_state(self, state: str, now: float) -> None:
        """Enter ``state``, remembering the previous one."""
        self.enter_state(state, now)
        self.touch(now)


# --- validation ----------------------------------------------------------------------------------------------
def _interval(schedule: dict[str, Any], name: str) -> None:
    value = schedule.get(name)
    if value is None:
        return
    path = f"schedule.{name}"
    try:
        seconds = parse_duration(str(value)).total_seconds()
    except ValueError as error:
        raise InvalidPropertyValue(path, value, "The value must be an ISO-8601 duration.") from error
    if seconds < MIN_INTERVAL_SECONDS:
        raise InvalidPropertyValue(path, value, "The value must be at least 1 minute.")
    schedule[name] = format_duration(parse_duration(str(value)))


def _moment(schedule: dict[str, Any], name: str) -> None:
    value = schedule.get(name)
    if value is None:
        return
    try:
        parse_iso(str(value))
    except ValueError as error:
        raise InvalidPropertyValue(f"schedule.{name}", value, "The value must be an ISO-8601 timestamp.") from error


def validate_schedule(value: object) -> dict[str, Any]:
    """Check a ``schedule`` object (durations are normalised: ``PT01H00M00S`` → ``PT1H``).

    Raises:
        InvalidPropertyValue: a bad timestamp or duration, or an interval under a minute.
    """
    schedule = dict(require_object(value, "schedule"))
    for name in ("doNotRunUntil", "doNotRunAfter"):
        _moment(schedule, name)
    for name in ("startWindow", "recurrenceInterval"):
        _interval(schedule, name)
    return {name: item for name, item in schedule.items() if item is not None}


def _validate(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for name in ("schedule", "jobSpecification"):
        if data.get(name) is None and not partial:
            raise MissingRequiredProperty(name)
    if data.get("schedule") is not None:
        spec["schedule"] = validate_schedule(data["schedule"])
    if data.get("jobSpecification") is not None:
        body = dict(require_object(data["jobSpecification"], "jobSpecification"))
        spec["jobSpecification"] = validate_job_spec(body, owner="jobschedule")
    if "metadata" in data:
        spec["metadata"] = optional_list(data, "metadata")
    return spec


# --- operations ----------------------------------------------------------------------------------------------
def create_schedule(account: Account, body: object, now: float) -> Schedule:
    """Validate a ``BatchJobScheduleCreateOptions`` body and add the schedule.

    Raises:
        BatchError: invalid body (400), duplicate id or quota (409).
    """
    data = require_object(body)
    schedule_id = validate_id(data.get("id"))
    spec = _validate(data, partial=False)
    if data.get("displayName") is not None:
        spec["displayName"] = data["displayName"]
    key = id_key(schedule_id)
    if key in account.schedules:
        raise JobScheduleExists()
    if key in account.jobs:
        raise JobWithSameIdExists()
    active = sum(1 for job in account.jobs.values() if job.state != "completed")
    active += sum(1 for schedule in account.schedules.values() if schedule.state != "completed")
    if active >= account.quotas.active_jobs:
        raise ActiveJobAndScheduleQuotaReached()
    schedule = Schedule(schedule_id, spec, account.next_seq(), now)
    first = schedule.schedule.get("doNotRunUntil")
    schedule.next_run = max(now, parse_iso(first).timestamp()) if first else now
    account.schedules[key] = schedule
    _changed(account, schedule)
    return schedule


def get_schedule(account: Account, schedule_id: str) -> Schedule:
    """Return a schedule by id (case-insensitive).

    Raises:
        JobScheduleNotFound: no such schedule.
    """
    return find(account.schedules, schedule_id, JobScheduleNotFound)


_CLOSED_STATES = {
    "deleting": JobScheduleBeingDeleted,
    "terminating": JobScheduleBeingTerminated,
    "completed": JobScheduleCompleted,
}


def _check_modifiable(schedule: Schedule) -> None:
    refuse_in_state(schedule, _CLOSED_STATES)


def _changed(account: Account, schedule: Schedule) -> None:
    account.changes.schedules.add(schedule)
    account.pending_schedules.add(schedule)
    account.notify()


def update_schedule(
    account: Account, schedule_id: str, body: object, now: float, clock: ServiceClock, *, replace: bool
) -> Schedule:
    """Apply ``PATCH`` (merge) or ``PUT`` (replace) to a schedule; jobs already made keep their specification.

    Raises:
        BatchError: no such schedule, not modifiable (409), invalid body (400).
    """
    data = require_object(body)
    schedule = get_schedule(account, schedule_id)
    _check_modifiable(schedule)
    spec = _validate(data, partial=not replace)
    for name in _UPDATABLE:
        if name in spec:
            schedule.spec[name] = spec[name]
        elif replace:
            schedule.spec.pop(name, None)
    if "schedule" in spec:
        replan(schedule, now, clock)
    schedule.touch(now)
    _changed(account, schedule)
    return schedule


def replan(schedule: Schedule, now: float, clock: ServiceClock) -> None:
    """Work out when the next job is due after the ``schedule`` part changed."""
    settings = schedule.schedule
    first = settings.get("doNotRunUntil")
    recurrence = settings.get("recurrenceInterval")
    if schedule.last_due is None:
        schedule.next_run = max(now, parse_iso(first).timestamp()) if first else now
    elif recurrence:
        schedule.next_run = schedule.last_due + clock.timer_seconds(parse_duration(recurrence).total_seconds())
    else:
        schedule.next_run = None


def set_enabled(account: Account, schedule_id: str, enabled: bool, now: float) -> Schedule:
    """Disable a schedule (it makes no jobs; the running one goes on) or enable it again.

    Raises:
        BatchError: no such schedule, or it is being deleted, terminated or completed (409).
    """
    schedule = get_schedule(account, schedule_id)
    _check_modifiable(schedule)
    schedule.set_state("active" if enabled else "disabled", now)
    _changed(account, schedule)
    return schedule


def terminate_schedule(account: Account, schedule_id: str, now: float) -> Schedule:
    """Terminate a schedule and its running job; it completes once that job has.

    Raises:
        BatchError: no such schedule, or it is being deleted, terminated or completed (409).
    """
    schedule = get_schedule(account, schedule_id)
    _check_modifiable(schedule)
    schedule.set_state("terminating", now)
    schedule.next_run = None
    job = recent_job(account, schedule)
    if job is not None and job.state in ("active", "disabling", "disabled", "enabling"):
        begin_termination(job, "UserTerminate", now)
    _changed(account, schedule)
    return schedule


def delete_schedule(account: Account, schedule_id: str, now: float) -> Schedule:
    """Mark a schedule ``deleting``; its jobs are deleted and then it is removed.

    Raises:
        JobScheduleNotFound: no such schedule.
    """
    schedule = get_schedule(account, schedule_id)
    if schedule.state != "deleting":
        schedule.set_state("deleting", now)
        schedule.next_run = None
        for job in jobs_of(account, schedule):
            delete_job(account, job.id, now)
    _changed(account, schedule)
    return schedule


# --- jobs of a schedule --------------------------------------------------------------------------------------
def jobs_of(account: Account, schedule: Schedule) -> list[Job]:
    """The schedule's jobs that still exist, oldest first."""
    return [job for key in schedule.job_keys if (job := account.jobs.get(key)) is not None]


def recent_job(account: Account, schedule: Schedule) -> Job | None:
    """The most recent job, if it still exists."""
    key = schedule.recent_job_key
    return account.jobs.get(key) if key is not None else None


def _auto_pool_spec(schedule: Schedule) -> dict[str, Any] | None:
    """The ``autoPoolSpecification`` of the schedule's ``jobSpecification``, if it has one."""
    spec: dict[str, Any] | None = schedule.spec["jobSpecification"]["poolInfo"].get("autoPoolSpecification")
    return spec


def _schedule_pool(account: Account, schedule: Schedule, now: float) -> str | None:
    """The id of the schedule's own auto pool (``poolLifetimeOption: jobschedule``), made with its first job."""
    spec = _auto_pool_spec(schedule)
    if spec is None or spec["poolLifetimeOption"] != "jobschedule":
        return None
    if schedule.auto_pool_id is None:
        schedule.auto_pool_id = autopools.create_auto_pool(account, spec, now).id
    return schedule.auto_pool_id


def make_job(account: Account, schedule: Schedule, now: float) -> Job:
    """Create the schedule's next job (``<scheduleId>:job-<n>``) from its ``jobSpecification``, by the same
    path as ``create_job``: its auto pool and job manager task are made with it.

    A job whose auto pool cannot be created (an invalid ``pool``, the pool quota) is made ``completed`` with
    the pool's error as its ``executionInfo.schedulingError``, as in Batch.
    """
    schedule.job_counter += 1
    job_id = f"{schedule.id}:job-{schedule.job_counter}"
    spec = copy.deepcopy(schedule.spec["jobSpecification"])
    try:
        job = add_job(account, job_id, spec, now, schedule_pool_id=_schedule_pool(account, schedule, now))
    except BatchError as error:  # its auto pool cannot be created
        _log.warning("job schedule %s: the auto pool of %s cannot be created: %s", schedule.id, job_id, error)
        job = add_job(account, job_id, spec, now, pool_error=error)
    schedule.job_keys.append(job.key)
    schedule.touch(now)
    account.changes.schedules.add(schedule)
    account.notify()
    return job


def _release_pool(account: Account, schedule: Schedule, now: float) -> None:
    """The schedule ended (completed or deleted): delete its auto pool unless ``keepAlive``."""
    spec = _auto_pool_spec(schedule) or {}
    autopools.release_auto_pool(account, spec, schedule.auto_pool_id, now)


def run_due(account: Account, schedule: Schedule, now: float, clock: ServiceClock) -> float | None:
    """Make the job that is due, as the service does, and say when to look again.

    One job runs at a time: a job due while the previous one is still running waits for it, for at
    most ``startWindow``; a missed start is skipped until the next recurrence. After
    ``doNotRunAfter``, or after the single job of a schedule without recurrence, the schedule
    completes once its last job has.

    Returns:
        The real time of the next due job, or None when only a job's completion can change anything.
    """
    settings = schedule.schedule
    due = schedule.next_run
    after = settings.get("doNotRunAfter")
    if due is not None and after and due > parse_iso(after).timestamp():
        due = schedule.next_run = None
    busy = (job := recent_job(account, schedule)) is not None and job.state != "completed"
    if due is None:
        if not busy:
            schedule.end_time = now
            schedule.set_state("completed", now)
            account.changes.schedules.add(schedule)
            _release_pool(account, schedule, now)
        return None
    if due > now or schedule.state != "active":
        return due if schedule.state == "active" else None
    window = settings.get("startWindow")
    recurrence = settings.get("recurrenceInterval")
    step = clock.timer_seconds(parse_duration(recurrence).total_seconds()) if recurrence else None
    if window and now > due + clock.real_seconds(parse_duration(window).total_seconds()):
        schedule.next_run = _skip(due, now, step)  # the opportunity was lost
        account.changes.schedules.add(schedule)
        return run_due(account, schedule, now, clock)
    if busy:
        return None
    make_job(account, schedule, now)
    schedule.last_due = due
    schedule.next_run = _skip(due, now, step)
    return schedule.next_run if schedule.next_run is not None else None


def _skip(due: float, now: float, step: float | None) -> float | None:
    """The first recurrence after ``now`` (None without recurrence)."""
    if step is None:
        return None
    following = due + step
    if following <= now:
        following += step * (int((now - following) // step) + 1)
    return following


def finish_deleting(account: Account, schedule: Schedule, now: float) -> bool:
    """Remove a deleting schedule once its jobs are gone (and its auto pool); True when it was removed."""
    if jobs_of(account, schedule):
        return False
    _release_pool(account, schedule, now)
    if account.schedules.get(schedule.key) is schedule:
        del account.schedules[schedule.key]
    schedule.removed = True
    account.changes.schedules.discard(schedule)
    account.changes.removals.append(("schedule", schedule.key))
    return True
