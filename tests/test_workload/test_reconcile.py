"""Reconcile decisions: every combination of what exists for an input, and which job new tasks go to."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from batchpipe.reconcile import Action, InputState, TaskSeen, choose_job, decide, summarise

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _task(
    attempt: int, state: str, result: str | None = None, *, job_open: bool = True, code: int | None = None
) -> TaskSeen:
    return TaskSeen(
        task_id=f"t-{attempt}",
        job_id="job",
        attempt=attempt,
        state=state,
        job_open=job_open,
        result=result,
        exit_code=code,
        start_time=T0,
        end_time=T0 + timedelta(seconds=2.5),
    )


SUCCEEDED = _task(0, "completed", "success", code=0)
FAILED = _task(0, "completed", "failure", code=3)
RUNNING = _task(0, "running")
QUEUED = _task(0, "active")
RUNNING_IN_ENDED_JOB = _task(0, "running", job_open=False)
TASKS = {
    "none": (),
    "succeeded": (SUCCEEDED,),
    "failed": (FAILED,),
    "running": (RUNNING,),
    "queued": (QUEUED,),
    "running, job ended": (RUNNING_IN_ENDED_JOB,),
}


def _expected(on_disk: bool, in_storage: bool, tasks: str, rerun_failed: bool, rerun_lost: bool) -> Action:
    if on_disk:
        return Action.DONE
    if in_storage:
        return Action.DOWNLOAD
    if tasks in ("running", "queued"):
        return Action.WAIT
    if tasks == "succeeded":
        return Action.SUBMIT if rerun_lost else Action.GIVE_UP
    if tasks == "failed":
        return Action.SUBMIT if rerun_failed else Action.GIVE_UP
    return Action.SUBMIT  # no task, or its job ended before it ran


@pytest.mark.parametrize(
    ("on_disk", "in_storage", "tasks", "rerun_failed", "rerun_lost"),
    list(itertools.product([False, True], [False, True], list(TASKS), [False, True], [False, True])),
)
def test_every_combination_gets_the_documented_action(
    on_disk: bool, in_storage: bool, tasks: str, rerun_failed: bool, rerun_lost: bool
) -> None:
    state = InputState("a.txt", on_disk=on_disk, in_storage=in_storage, tasks=TASKS[tasks])
    decision = decide(state, rerun_failed=rerun_failed, rerun_lost=rerun_lost)
    assert decision.action == _expected(on_disk, in_storage, tasks, rerun_failed, rerun_lost)
    assert decision.key == "a.txt"
    assert decision.reason
    if decision.action == Action.SUBMIT:
        assert decision.attempt == (0 if tasks == "none" else 1)
    else:
        assert decision.attempt is None


def test_a_new_attempt_never_reuses_an_attempt_number_seen_in_any_job() -> None:
    tasks = (_task(0, "completed", "failure", code=1), _task(2, "completed", "success", code=0, job_open=False))
    decision = decide(InputState("a.txt", tasks=tasks))
    assert (decision.action, decision.attempt) == (Action.SUBMIT, 3)
    assert decision.task is tasks[1]  # the latest attempt decides
    assert "succeeded but its outputs are not in storage" in decision.reason


def test_the_reason_says_why_a_task_is_redone() -> None:
    assert "failed (exit code 3)" in decide(InputState("a", tasks=(FAILED,))).reason
    assert "has ended" in decide(InputState("a", tasks=(RUNNING_IN_ENDED_JOB,))).reason
    assert decide(InputState("a")).reason == "no task yet"
    gave_up = decide(InputState("a", tasks=(SUCCEEDED,)), rerun_lost=False)
    assert "twice in this run" in gave_up.reason


def test_durations_and_descriptions_of_tasks() -> None:
    assert SUCCEEDED.duration_seconds == 2.5
    assert _task(0, "active").describe() == "task t-0 is active"
    never_ran = TaskSeen("t", "j", 0, "completed", True, "failure", None, "ResourceFileDownloadError: 404")
    assert never_ran.duration_seconds is None
    assert never_ran.describe() == "task t failed (did not run: ResourceFileDownloadError: 404)"


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ({}, (1, False)),  # a new run
        ({1: "active"}, (1, True)),  # resume into the running job
        ({1: "completed"}, (2, False)),  # a completed job cannot take tasks: the next generation
        ({1: "completed", 2: "terminating"}, (3, False)),
        ({1: "completed", 2: "active"}, (2, True)),
        ({2: "completed"}, (3, False)),  # the first job was deleted: never go back below the newest
        ({1: "deleting"}, (2, False)),
        ({1: "disabled"}, (2, False)),
    ],
)
def test_new_tasks_go_to_the_newest_open_job_or_the_next_one(jobs: dict[int, str], expected: tuple[int, bool]) -> None:
    assert choose_job(jobs) == expected


def test_summary_counts_every_action() -> None:
    decisions = [decide(InputState("a", on_disk=True)), decide(InputState("b")), decide(InputState("c"))]
    assert summarise(decisions) == {"done": 1, "download": 0, "wait": 0, "submit": 2, "give-up": 0}
