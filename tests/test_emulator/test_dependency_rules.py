"""Pure rules of task dependencies and exit conditions (no service, no processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batch_emulator.errors import BatchError
from batch_emulator.models import dependencies, exit_conditions, jobs, tasks
from batch_emulator.models.account import Account
from batch_emulator.models.dependencies import DependencyGraph, numeric_id
from batch_emulator.models.exit_conditions import ExitOptions, select
from batch_emulator.store import Store
from batch_emulator.timefmt import now_ts


class FakeTask:
    """What the graph needs of a task: identity, ``seq`` and ``removed``."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.removed = False


def graph() -> DependencyGraph:
    return DependencyGraph(None)  # type: ignore[arg-type]


def register(g: DependencyGraph, seq: int, ids: list[str] | None = None, ranges: Any = None) -> Any:
    task = FakeTask(seq)
    ready = g.register(task, {"taskIds": ids or [], "taskIdRanges": ranges or []})  # type: ignore[arg-type]
    return task, ready


def test_a_task_waits_for_every_id_and_is_released_by_the_last_one() -> None:
    g = graph()
    task, ready = register(g, 1, ids=["a", "B"])
    assert not ready
    assert g.satisfy("a") == []
    assert g.satisfy("b") == [task]  # ids compare case-insensitively
    assert not g.is_waiting(task)


def test_ranges_count_missing_tasks_and_overlapping_ids_once() -> None:
    g = graph()
    task, ready = register(g, 1, ids=["3", "x"], ranges=[{"start": 1, "end": 3}, {"start": 2, "end": 4}])
    assert not ready
    for key in ("1", "2", "3", "4"):
        assert g.satisfy(key) == []
    assert g.satisfy("x") == [task]


def test_already_satisfied_dependencies_do_not_wait() -> None:
    g = graph()
    for key in ("1", "2", "a"):
        g.satisfy(key)
    _, ready = register(g, 1, ids=["a"], ranges=[{"start": 1, "end": 2}])
    assert ready


def test_wide_ranges_are_released_without_expansion() -> None:
    g = graph()
    width = dependencies.RANGE_EXPANSION_LIMIT + 5
    task, _ = register(g, 1, ranges=[{"start": 0, "end": width - 1}])
    assert g.waiting[task] == width
    for number in range(width - 1):
        g.satisfy(str(number))
    assert g.satisfy(str(width - 1)) == [task]


def test_released_dependents_come_out_in_creation_order_and_satisfy_is_idempotent() -> None:
    g = graph()
    late, _ = register(g, 5, ids=["1"])
    early, _ = register(g, 2, ids=["1"])
    assert g.satisfy("1") == [early, late]
    assert g.satisfy("1") == []


def test_only_canonical_numbers_fall_in_ranges() -> None:
    assert numeric_id("12") == 12
    assert numeric_id("0") == 0
    assert numeric_id("012") is None
    assert numeric_id("1a") is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"taskIdRanges": [{"start": 5, "end": 1}]}, "InvalidPropertyValue"),
        ({"taskIdRanges": [{"start": -1, "end": 1}]}, "InvalidPropertyValue"),
        ({"taskIds": ["bad id"]}, "InvalidPropertyValue"),
        ({"taskIds": ["t" * 64] * 1001}, "TaskDependencyListTooLong"),
    ],
)
def test_invalid_depends_on_is_refused(body: dict[str, Any], code: str) -> None:
    with pytest.raises(BatchError) as caught:
        dependencies.validate(body)
    assert caught.value.code == code


CONDITIONS = exit_conditions.validate(
    {
        "exitCodes": [{"code": 0, "exitOptions": {"jobAction": "terminate"}}, {"code": 3, "exitOptions": {}}],
        "exitCodeRanges": [{"start": 10, "end": 20, "exitOptions": {"dependencyAction": "Satisfy"}}],
        "preProcessingError": {"jobAction": "disable"},
        "fileUploadError": {"dependencyAction": "satisfy", "jobAction": "none"},
        "default": {"jobAction": "none"},
    }
)


@pytest.mark.parametrize(
    ("exit_code", "result", "failure", "expected"),
    [
        (0, "success", None, ExitOptions("terminate", "satisfy")),  # exit code 0 listed explicitly
        (3, "failure", "FailureExitCode", ExitOptions("terminate", "block")),  # listed, options defaulted
        (15, "failure", "FailureExitCode", ExitOptions("terminate", "satisfy")),  # in a range
        (15, "failure", "FileUploadMiscError", ExitOptions("terminate", "satisfy")),  # exit code wins over upload
        (0, "failure", "FileUploadMiscError", ExitOptions("terminate", "satisfy")),  # 0 listed: it wins
        (7, "failure", "FileUploadMiscError", ExitOptions("none", "satisfy")),
        (None, "failure", "BlobNotFound", ExitOptions("disable", "block")),
        (7, "failure", "FailureExitCode", ExitOptions("none", "block")),  # default
        (None, "failure", "TaskEnded", ExitOptions("none", "block")),  # ended: default, not pre-processing
    ],
)
def test_exit_conditions_select_the_documented_options(
    exit_code: int | None, result: str, failure: str | None, expected: ExitOptions
) -> None:
    assert select(CONDITIONS, exit_code=exit_code, result=result, failure_code=failure) == expected


def test_without_conditions_the_defaults_depend_on_success() -> None:
    assert select(None, exit_code=0, result="success", failure_code=None) == ExitOptions("none", "satisfy")
    assert select(None, exit_code=1, result="failure", failure_code="x") == ExitOptions("terminate", "block")
    assert select({"default": {"jobAction": "disable"}}, exit_code=0, result="success", failure_code=None) == (
        ExitOptions("none", "satisfy")
    )


@pytest.mark.parametrize(
    "body",
    [
        {"exitCodes": [{"code": "1", "exitOptions": {}}]},
        {"exitCodes": [{"code": 1}]},
        {"exitCodeRanges": [{"start": 5, "end": 1, "exitOptions": {}}]},
        {"default": {"jobAction": "requeue"}},
        {"default": {"dependencyAction": "cancel"}},
    ],
)
def test_invalid_exit_conditions_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(BatchError) as caught:
        exit_conditions.validate(body)
    assert caught.value.code == "InvalidPropertyValue"


def test_actions_the_job_cannot_take_are_refused() -> None:
    conditions = exit_conditions.validate({"default": {"dependencyAction": "satisfy", "jobAction": "none"}})
    with pytest.raises(BatchError, match="InvalidPropertyValue"):
        exit_conditions.check_against_job(
            conditions, uses_dependencies=False, on_task_failure="performexitoptionsjobaction"
        )
    with pytest.raises(BatchError, match="InvalidPropertyValue"):
        exit_conditions.check_against_job(conditions, uses_dependencies=True, on_task_failure="noaction")
    exit_conditions.check_against_job(conditions, uses_dependencies=True, on_task_failure="performexitoptionsjobaction")


def test_a_restart_keeps_waiting_tasks_out_of_the_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    account, now = Account("acct", tmp_path), now_ts()
    job = jobs.create_job(account, {"id": "j", "poolInfo": {"poolId": "p"}, "usesTaskDependencies": True}, now)
    blocking = {"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]}
    bodies: list[dict[str, Any]] = [
        {"id": "1", "commandLine": "a"},
        {"id": "2", "commandLine": "b", "exitConditions": blocking},
        {"id": "3", "commandLine": "c", "dependsOn": {"taskIdRanges": [{"start": 1, "end": 2}]}},
        {"id": "4", "commandLine": "d", "dependsOn": {"taskIds": ["1"]}},
    ]
    tasks.add_task_collection(account, job, bodies, now)
    first = job.tasks["1"]
    first.result, first.exit_code = "success", 0
    tasks.set_state(first, "completed", now)
    assert [task.id for task in job.queue] == ["1", "2", "4"]  # "4" was released by "1"
    store.flush(account)
    loaded = Account("acct", tmp_path)
    store.load(loaded, now_ts())
    again = loaded.jobs["j"]
    assert [task.id for task in again.queue] == ["2", "4"]
    second = again.tasks["2"]
    second.result, second.exit_code = "failure", 3
    tasks.set_state(second, "completed", now_ts())  # exit code 3 satisfies its dependents
    assert [task.id for task in again.queue] == ["2", "4", "3"]
    store.close()
