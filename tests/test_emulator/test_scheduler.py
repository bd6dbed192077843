"""The scheduler's state machines, driven through the models with a scripted runner (no HTTP, no processes)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from batch_emulator.faults import FaultInjector, FaultSpec
from batch_emulator.janitor import Janitor
from batch_emulator.models import jobs, pools, tasks
from batch_emulator.models.account import Account
from batch_emulator.node.spec import TaskRunResult, TaskRunSpec
from batch_emulator.scheduler import Scheduler
from batch_emulator.timefmt import now_ts

IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


@dataclass
class ScriptedRunner:
    """Stands in for the node runner: exit codes per task id, tasks that block until cancelled."""

    exit_codes: dict[str, list[int]] = field(default_factory=dict)
    blocking: set[str] = field(default_factory=set)
    calls: list[TaskRunSpec] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    peak: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, spec: TaskRunSpec, cancel: threading.Event) -> TaskRunResult:
        start = datetime.now(UTC)
        name = spec.task_id or "<start>"
        with self.lock:
            self.calls.append(spec)
            self.running[spec.node_id] += 1
            self.peak[spec.node_id] = max(self.peak[spec.node_id], self.running[spec.node_id])
            codes = self.exit_codes.get(name)
            code = codes.pop(0) if codes else 0
        try:
            if name in self.blocking:
                cancel.wait(10)
            task_dir = spec.node_root / "startup" if spec.kind == "start" else spec.node_root / "workitems" / name
            task_dir.mkdir(parents=True, exist_ok=True)
            if cancel.is_set():
                info = {"category": "usererror", "code": "TaskEnded", "message": "ended", "details": []}
                return TaskRunResult(None, "failure", start, datetime.now(UTC), task_dir, info)
            info = None if code == 0 else {"category": "usererror", "code": "FailureExitCode", "message": "x"}
            result = "success" if code == 0 else "failure"
            return TaskRunResult(code, result, start, datetime.now(UTC), task_dir, info)  # type: ignore[arg-type]
        finally:
            with self.lock:
                self.running[spec.node_id] -= 1


@dataclass
class Harness:
    account: Account
    runner: ScriptedRunner
    faults: FaultInjector

    def wait(self, condition: Callable[[], Any], what: str, helpers: Any) -> Any:
        def locked() -> Any:
            with self.account.lock:
                return condition()

        return helpers.wait_until(locked, what=what, timeout=10)

    def pool(self, pool_id: str, nodes: int = 1, slots: int = 1, **extra: Any) -> pools.Pool:
        body = {"id": pool_id, "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}
        body.update(targetDedicatedNodes=nodes, taskSlotsPerNode=slots, **extra)
        with self.account.lock:
            return pools.create_pool(self.account, body, now_ts())

    def job(self, job_id: str, pool_id: str, **extra: Any) -> jobs.Job:
        with self.account.lock:
            return jobs.create_job(self.account, {"id": job_id, "poolInfo": {"poolId": pool_id}, **extra}, now_ts())

    def add(self, job: jobs.Job, *bodies: dict[str, Any]) -> None:
        with self.account.lock:
            tasks.add_task_collection(self.account, job, [{"commandLine": "/bin/true", **b} for b in bodies], now_ts())


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    account = Account("unit", tmp_path / "accounts" / "unit")
    runner = ScriptedRunner()
    faults = FaultInjector()
    janitor = Janitor(tmp_path / "trash")
    scheduler = Scheduler(
        account, runner=runner, faults=faults, janitor=janitor, allocation_seconds=0.0, max_workers=16
    )
    scheduler.start()
    try:
        yield Harness(account, runner, faults)
    finally:
        scheduler.stop()
        janitor.close()


def idle_nodes(pool: pools.Pool, count: int) -> bool:
    return len(pool.nodes) == count and all(node.state == "idle" for node in pool.nodes.values())


def test_nodes_reach_idle_and_the_pool_steady(harness: Harness, helpers: Any) -> None:
    pool = harness.pool("p", nodes=3)
    harness.wait(lambda: idle_nodes(pool, 3) and pool.allocation_state == "steady", "3 idle nodes", helpers)
    for node in pool.nodes.values():
        root = harness.account.node_root("p", node.id)
        assert {path.name for path in root.iterdir()} >= {"shared", "startup", "workitems"}


def test_slots_per_node_are_honoured_and_tasks_spread(harness: Harness, helpers: Any) -> None:
    pool = harness.pool("p", nodes=2, slots=2)
    harness.wait(lambda: idle_nodes(pool, 2), "idle nodes", helpers)
    job = harness.job("j", "p")
    names = [f"t{i}" for i in range(6)]
    harness.runner.blocking.update(names)
    harness.add(job, *({"id": name} for name in names))
    harness.wait(lambda: job.task_counts["running"] == 4, "4 running", helpers)
    assert job.task_counts["active"] == 2
    assert sorted(node.slots_used for node in pool.nodes.values()) == [2, 2]
    with harness.account.lock:
        jobs.terminate_job(harness.account, "j", None, now_ts())
    harness.wait(lambda: job.state == "completed", "job completed", helpers)
    assert max(harness.runner.peak.values()) == 2


def test_pack_fills_one_node_first(harness: Harness, helpers: Any) -> None:
    pool = harness.pool("p", nodes=2, slots=2, taskSchedulingPolicy={"nodeFillType": "pack"})
    harness.wait(lambda: idle_nodes(pool, 2), "idle nodes", helpers)
    job = harness.job("j", "p")
    harness.runner.blocking.update({"a", "b"})
    harness.add(job, {"id": "a"}, {"id": "b"})
    harness.wait(lambda: job.task_counts["running"] == 2, "2 running", helpers)
    assert sorted(node.slots_used for node in pool.nodes.values()) == [0, 2]
    with harness.account.lock:
        jobs.delete_job(harness.account, "j", now_ts())
    harness.wait(lambda: "j" not in harness.account.jobs, "job deleted", helpers)


def test_retry_then_success(harness: Harness, helpers: Any) -> None:
    pool = harness.pool("p")
    job = harness.job("j", "p")
    harness.runner.exit_codes["flaky"] = [1, 2, 0]
    harness.add(job, {"id": "flaky", "constraints": {"maxTaskRetryCount": 2}})
    task = job.tasks["flaky"]
    harness.wait(lambda: task.state == "completed", "flaky completed", helpers)
    assert (task.result, task.exit_code, task.retry_count) == ("success", 0, 2)
    assert task.last_retry_time is not None
    assert job.task_counts["succeeded"] == 1
    assert len([call for call in harness.runner.calls if call.task_id == "flaky"]) == 3
    assert [call.retry_count for call in harness.runner.calls if call.task_id == "flaky"] == [0, 1, 2]
    assert idle_nodes(pool, 1)


def test_job_retry_count_applies_when_the_task_sets_none(harness: Harness, helpers: Any) -> None:
    harness.pool("p")
    job = harness.job("j", "p", constraints={"maxTaskRetryCount": 1})
    harness.runner.exit_codes["bad"] = [5, 5, 5]
    harness.add(job, {"id": "bad"})
    task = job.tasks["bad"]
    harness.wait(lambda: task.state == "completed", "bad completed", helpers)
    assert (task.result, task.exit_code, task.retry_count) == ("failure", 5, 1)
    assert task.failure_info is not None
    assert job.task_counts["failed"] == 1


def test_higher_priority_job_runs_first(harness: Harness, helpers: Any) -> None:
    harness.pool("p")
    low = harness.job("low", "p", priority=-10)
    high = harness.job("high", "p", priority=100)
    harness.add(low, {"id": "l1"}, {"id": "l2"})
    harness.add(high, {"id": "h1"}, {"id": "h2"})
    harness.wait(lambda: low.task_counts["completed"] + high.task_counts["completed"] == 4, "all done", helpers)
    order = [call.task_id for call in harness.runner.calls]
    assert order.index("h2") < order.index("l2")


def test_shrinking_a_pool_requeues_running_tasks(harness: Harness, helpers: Any) -> None:
    pool = harness.pool("p", nodes=2)
    harness.wait(lambda: idle_nodes(pool, 2), "idle nodes", helpers)
    job = harness.job("j", "p")
    harness.runner.blocking.update({"a", "b"})
    harness.add(job, {"id": "a"}, {"id": "b"})
    harness.wait(lambda: job.task_counts["running"] == 2, "2 running", helpers)
    with harness.account.lock:
        pools.resize_pool(harness.account, "p", {"targetDedicatedNodes": 1}, now_ts())
    harness.wait(lambda: len(pool.nodes) == 1 and pool.allocation_state == "steady", "one node left", helpers)
    requeued = [task for task in job.tasks.values() if task.requeue_count == 1]
    assert len(requeued) == 1
    assert requeued[0].state in ("active", "preparing", "running")


def test_stopping_a_shrink_reports_no_allocation_left_undone(harness: Harness, helpers: Any) -> None:
    pool = harness.pool("p", nodes=2)
    harness.wait(lambda: idle_nodes(pool, 2), "idle nodes", helpers)
    with harness.account.lock:  # the stop arrives before the scheduler has marked the surplus nodes
        pools.resize_pool(harness.account, "p", {"targetDedicatedNodes": 0}, now_ts())
        pools.stop_resize(harness.account, "p", now_ts())
        assert pool.resize_errors == []


def test_stopping_a_growth_reports_the_allocation_left_undone(harness: Harness, helpers: Any) -> None:
    pool = harness.pool("p", nodes=0)
    harness.wait(lambda: pool.allocation_state == "steady", "steady", helpers)
    with harness.account.lock:  # no node allocated yet when the stop arrives
        pools.resize_pool(harness.account, "p", {"targetDedicatedNodes": 2}, now_ts())
        pools.stop_resize(harness.account, "p", now_ts())
        assert [(e["code"], "dedicated" in e["message"]) for e in pool.resize_errors] == [("ResizeStopped", True)]


def test_core_quota_stops_allocation_with_a_resize_error(harness: Harness, helpers: Any) -> None:
    harness.account.quotas.dedicated_cores = 4
    pool = harness.pool("p", nodes=3)
    harness.wait(lambda: pool.allocation_state == "steady", "steady", helpers)
    assert len(pool.nodes) == 2
    assert pool.target_dedicated == 3
    assert [error["code"] for error in pool.resize_errors] == ["AccountCoreQuotaReached"]


def test_injected_task_failure_and_preemption(harness: Harness, helpers: Any) -> None:
    harness.faults.replace(FaultSpec.parse("task_fail=doomed-*:42,preempt=bumpy"))
    pool = harness.pool("p")
    job = harness.job("j", "p")
    harness.add(job, {"id": "doomed-1"}, {"id": "bumpy"})
    harness.wait(lambda: job.task_counts["completed"] == 2, "both completed", helpers)
    doomed, bumpy = job.tasks["doomed-1"], job.tasks["bumpy"]
    assert (doomed.exit_code, doomed.result) == (42, "failure")
    assert (bumpy.exit_code, bumpy.result, bumpy.requeue_count) == (0, "success", 0)
    assert [call.task_id for call in harness.runner.calls].count("bumpy") == 1  # the preempted run never ran
    assert harness.faults.preempt("j", "bumpy") is False  # a task is preempted once
    harness.wait(lambda: idle_nodes(pool, 1), "node back", helpers)


def test_injected_start_task_failure(harness: Harness, helpers: Any) -> None:
    harness.faults.replace(FaultSpec.parse("starttask_fail=fragile*"))
    pool = harness.pool("fragile-pool", startTask={"commandLine": "/bin/true"})
    harness.wait(lambda: [n.state for n in pool.nodes.values()] == ["starttaskfailed"], "failed node", helpers)
    node = next(iter(pool.nodes.values()))
    assert node.start_task_info is not None
    assert (node.start_task_info["exitCode"], node.start_task_info["result"]) == (1, "failure")


def test_on_all_tasks_complete_with_no_tasks_completes_at_once(harness: Harness, helpers: Any) -> None:
    job = harness.job("j", "nowhere", onAllTasksComplete="terminatejob")
    harness.wait(lambda: job.state == "completed", "job completed", helpers)
    assert job.terminate_reason == "AllTasksComplete"
