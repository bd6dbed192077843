"""The formulas of Microsoft's autoscale documentation ("Create a formula to automatically scale compute
nodes in a Batch pool") evaluate as documented, and a pool result recorded from the real service is
reproduced digit for digit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from batch_emulator.autoscale.errors import InsufficientSampleData
from batch_emulator.autoscale.evaluator import Environment, evaluate
from batch_emulator.autoscale.examples import (
    CPU_BASED,
    INITIAL_SIZE,
    PARALLEL_TASKS,
    PENDING_TASKS,
    PREEMPTED_NODES,
    TASK_BASED,
    WORK_HOURS,
)
from batch_emulator.autoscale.samples import METRIC_NAMES, SampleHistory

NOW = datetime(2016, 10, 13, 19, 18, 47, 805000, tzinfo=UTC)  # the time of the documented sample output

# From a pool listing of the real service (a variant of the task-based example on $ActiveTasks).
RECORDED_FORMULA = """$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point, otherwise we use the maximum of \
last sample point and the history average.
$tasks = $samples < 70 ? max(0, $ActiveTasks.GetSample(1)) :
max( $ActiveTasks.GetSample(1), avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise half of current dedicated.
$targetVMs = $tasks > 0 ? $tasks : max(0, $TargetDedicatedNodes / 2);
cappedPoolSize = 3;
$TargetDedicatedNodes = max(1, min($targetVMs, cappedPoolSize));
// Set node deallocation mode - keep nodes active only until tasks finish
$NodeDeallocationOption = taskcompletion;"""
RECORDED_RESULTS = (
    "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;"
    "$samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3"
)


def history(minutes: float, values: Mapping[str, float], *, skip_newest: int = 0) -> SampleHistory:
    """A history with a sample every 30 s over the last ``minutes`` (the newest ``skip_newest`` missing)."""
    samples = SampleHistory(METRIC_NAMES)
    count = int(minutes * 2)
    for index in range(count - skip_newest):
        samples.record(NOW.timestamp() - (count - index) * 30 + 1, values)
    return samples


def env(
    samples: SampleHistory | None = None, *, dedicated: float = 0, now: datetime = NOW, **current: float
) -> Environment:
    return Environment(
        target_dedicated=dedicated,
        metrics={f"${name}": value for name, value in current.items()},
        history=samples or SampleHistory(METRIC_NAMES),
        now=now,
    )


def test_pending_tasks_example_grows_with_the_average_and_caps_at_25() -> None:
    busy = evaluate(PENDING_TASKS, env(history(5, {"$PendingTasks": 40})))
    assert (busy.target_dedicated, busy.deallocation_option) == (25, "taskcompletion")
    light = evaluate(PENDING_TASKS, env(history(5, {"$PendingTasks": 3})))
    assert light.target_dedicated == 3


def test_pending_tasks_example_starts_with_one_node_without_samples() -> None:
    fresh = evaluate(PENDING_TASKS, env(history(0.5, {"$PendingTasks": 40})))  # 1 of 6 samples: 17 %
    assert fresh.target_dedicated == 1
    assert "pendingTaskSamplePercent=16.6667" in fresh.results


def test_preempted_nodes_example_replaces_spot_nodes_with_dedicated_ones() -> None:
    result = evaluate(PREEMPTED_NODES, env(history(5, {"$PreemptedNodeCount": 2})))
    assert (result.target_dedicated, result.target_low_priority) == (2, 23)
    calm = evaluate(PREEMPTED_NODES, env(history(5, {"$PreemptedNodeCount": 0})))
    assert (calm.target_dedicated, calm.target_low_priority) == (0, 25)


def test_cpu_example_grows_by_ten_percent_when_busy_and_shrinks_when_idle() -> None:
    busy = evaluate(CPU_BASED, env(history(60, {"$CPUPercent": 0.9}), CurrentDedicatedNodes=10))
    assert busy.results.startswith("$TargetDedicatedNodes=11;")
    assert busy.target_dedicated == 11
    idle = evaluate(CPU_BASED, env(history(60, {"$CPUPercent": 0.1}), CurrentDedicatedNodes=10))
    assert (idle.target_dedicated, idle.variables["$totalDedicatedNodes"]) == (9, 9.0)
    steady = evaluate(CPU_BASED, env(history(60, {"$CPUPercent": 0.5}), CurrentDedicatedNodes=10))
    assert steady.target_dedicated == 10


def test_work_hours_example_prints_the_documented_results() -> None:
    result = evaluate(WORK_HOURS, env())
    assert result.results == (
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$curTime=2016-10-13T19:18:47.805Z;$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0"
    )
    monday_morning = evaluate(WORK_HOURS, env(now=datetime(2016, 10, 17, 9, 30, tzinfo=UTC)))
    assert monday_morning.target_dedicated == 20
    sunday = evaluate(WORK_HOURS, env(now=datetime(2016, 10, 16, 9, 30, tzinfo=UTC)))
    assert sunday.target_dedicated == 10


def test_time_zone_offset_moves_the_hour() -> None:
    shifted = evaluate("$curTime = time() + (-6 * TimeInterval_Hour); $TargetDedicatedNodes = $curTime.hour;", env())
    assert shifted.target_dedicated == 13


@pytest.mark.parametrize(
    ("pending", "current", "expected"),
    [(7.0, 0.0, 7), (50.0, 0.0, 20), (0.0, 6.0, 3)],
)
def test_task_based_example(pending: float, current: float, expected: int) -> None:
    result = evaluate(TASK_BASED, env(history(15, {"$PendingTasks": pending}), dedicated=current))
    assert (result.target_dedicated, result.deallocation_option) == (expected, "taskcompletion")


def test_task_based_example_with_too_few_samples_uses_the_last_one() -> None:
    result = evaluate(TASK_BASED, env(history(5, {"$PendingTasks": 4})))
    assert result.variables["$samples"] == pytest.approx(100 * 10 / 30)
    assert result.target_dedicated == 4


def test_parallel_tasks_example_adds_a_node_per_four_tasks_up_to_three() -> None:
    one_more = evaluate(PARALLEL_TASKS, env(history(15, {"$ActiveTasks": 6}), dedicated=1))
    assert one_more.variables["$extraVMs"] == pytest.approx(1.25)
    assert one_more.target_dedicated == 2
    capped = evaluate(PARALLEL_TASKS, env(history(15, {"$ActiveTasks": 100}), dedicated=1))
    assert capped.target_dedicated == 3


def test_initial_size_example_keeps_four_nodes_during_startup_then_drops_idle_pools() -> None:
    started_recently = INITIAL_SIZE.format(started="Thu, 13 Oct 2016 19:15:00 GMT")
    assert evaluate(started_recently, env(history(60, {}))).target_dedicated == 4
    started_long_ago = INITIAL_SIZE.format(started="Thu, 13 Oct 2016 17:00:00 GMT")
    assert evaluate(started_long_ago, env(history(60, {}))).target_dedicated == 0
    busy = evaluate(started_long_ago, env(history(60, {"$RunningTasks": 2}), dedicated=4))
    assert busy.target_dedicated == 4


def test_initial_size_example_needs_half_of_the_samples() -> None:
    started_long_ago = INITIAL_SIZE.format(started="Thu, 13 Oct 2016 17:00:00 GMT")
    with pytest.raises(InsufficientSampleData) as caught:
        evaluate(started_long_ago, env(history(20, {})))
    assert caught.value.message_value.endswith("$RunningTasks wanted 50%, received 33%")


def test_recorded_pool_result_is_reproduced() -> None:
    samples = history(15, {"$ActiveTasks": 0}, skip_newest=1)  # 29 of the 30 samples of 15 minutes
    result = evaluate(RECORDED_FORMULA, env(samples, dedicated=1))
    assert result.results == RECORDED_RESULTS
