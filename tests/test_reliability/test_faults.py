"""Faults injected into the local Batch service: throttling, failing tasks and start tasks, preemption."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchpipe.errors import PipelineFailed
from flows.pipeline import top_words_pipeline

pytestmark = [pytest.mark.integration]

# seed 3 draws a 429, a 503 and a 500 within the first 7 requests; slow nodes make monitoring poll under fire.
THROTTLING = "throttle=0.2,busy=0.1,server_error=0.05,retry_after=1,slow_allocation=2s,seed=3"


def _run(inputs: list[Path], out: Path, approval: str = "no") -> Any:
    return top_words_pipeline(
        inputs=[str(p) for p in inputs], output_dir=str(out), approval=approval, return_state=True
    )


@pytest.mark.scenario(
    "Faults",
    "30% of Batch requests throttled (20% 429 + 10% 503, Retry-After: 1) and 5% 500 InternalError, 6 inputs",
    "the run completes, 0 duplicate tasks, every output downloaded and verified",
)
def test_throttling_and_server_errors_are_survived(
    stack: Any,
    emulator: Any,
    faults: Callable[[str], None],
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    job_tasks: Callable[..., list[Any]],
    observe: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    sources = inputs(tmp_path / "in", 6)
    caplog.set_level(logging.INFO, logger="azure.core.pipeline.policies.http_logging_policy")
    before = emulator.stats()
    faults(THROTTLING)

    state = _run(sources, tmp_path / "out")

    faults("")
    assert state.is_completed(), state.message
    summary = state.result()
    statuses = Counter(
        m.group(1)
        for r in caplog.records
        if r.name.endswith("http_logging_policy") and (m := re.search(r"Response status: (\d+)", r.getMessage()))
    )
    injected = {code: statuses[code] for code in ("429", "503", "500")}
    assert all(injected.values()), f"every kind of fault was injected and answered: {injected}"
    tasks = job_tasks(stack.batch, summary["job_id"], sources)
    after = emulator.stats()
    assert after["tasksStarted"] - before["tasksStarted"] == len(sources)  # each task ran exactly once
    assert all(t.execution_info.retry_count == 0 for t in tasks)
    verified = check_outputs(Path(summary["output_dir"]), sources, 3, summary["job_id"], stack.pool_id)
    observe(
        f"run Completed; answers seen by the SDK: {statuses['429']}x 429, {statuses['503']}x 503, "
        f"{statuses['500']}x 500 (all retried), {sum(statuses.values())} responses in all"
    )
    observe(
        f"{len(tasks)} tasks for {len(sources)} inputs (0 duplicates, each started once), {verified} outputs verified"
    )


@pytest.mark.scenario(
    "Faults",
    "one task exits 3 (task_fail=topn-broken-*:3), BATCHPIPE_MAX_TASK_RETRIES=2, two good inputs",
    "retried per maxTaskRetryCount, then reported with its stderr tail in the Prefect log; the other outputs "
    "downloaded; run Failed with a one-line summary",
)
def test_failing_task_is_retried_then_reported(
    stack: Any,
    faults: Callable[[str], None],
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    flow_logs: Callable[..., list[str]],
    observe: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from prefect import get_client

    good = inputs(tmp_path / "in", 2, prefix="good")
    broken = tmp_path / "in" / "broken.txt"
    broken.write_text("this one fails on the node\n", "utf-8")
    monkeypatch.setenv("BATCHPIPE_MAX_TASK_RETRIES", "2")
    faults("task_fail=topn-broken-*:3")

    state = _run([*good, broken], tmp_path / "out")

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelineFailed)
    assert "\n" not in error.message
    assert re.search(r"1 task\(s\) failed: topn-broken-\w+; 2 outputs verified", error.message), error.message
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(flow_run_id).state
    assert stored is not None
    assert stored.type.value == "FAILED"
    assert "\n" not in (stored.message or "")
    logs = flow_logs(flow_run_id, until="stderr tail")
    report = next(m for m in logs if "stderr tail" in m)
    assert re.match(r"Task topn-broken-\w+ failed \(exit code 3\)", report)
    assert "The task failed by fault injection (exit code 3)" in report
    job_id = next(iter(Path(tmp_path / "out").iterdir())).name
    failed = [t for t in stack.batch.list_tasks(job_id) if t.id.startswith("topn-broken-")]
    assert [(t.execution_info.retry_count, t.execution_info.exit_code) for t in failed] == [(2, 3)]
    check_outputs(tmp_path / "out" / job_id, good, 3, job_id, stack.pool_id)
    observe(f"task ran 3 times (retryCount {failed[0].execution_info.retry_count}), exit code 3")
    observe(f"Prefect log: `{report.splitlines()[0]}` + stderr tail `{report.splitlines()[-1].strip()}`")
    observe(f"2 other outputs downloaded and verified; flow run {stored.type.value}: `{stored.message}`")


@pytest.mark.scenario(
    "Faults",
    "every start task of the pool fails (starttask_fail=<pool>), poll interval 0.5s, monitoring timeout 300s",
    "the run fails within one poll interval of the node turning starttaskfailed, with the start task's stderr "
    "(not after the monitoring timeout); the same run again, the fault gone, reboots the node and completes",
)
def test_failing_start_task_fails_the_run_early(
    stack: Any,
    faults: Callable[[str], None],
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    observe: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from prefect import get_client

    monkeypatch.setenv("BATCHPIPE_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("BATCHPIPE_MAX_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("BATCHPIPE_MONITOR_TIMEOUT", "300")
    faults(f"starttask_fail={stack.pool_id}")

    state = _run(inputs(tmp_path / "in", 2), tmp_path / "out")

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelineFailed)
    assert "\n" not in error.message
    assert "is starttaskfailed" in error.message
    assert "The start task failed by fault injection (exit code 1)" in error.message
    assert "timed out" not in error.message
    node = next(iter(stack.batch.list_nodes(stack.pool_id)))
    assert node.state == "starttaskfailed"
    assert node.start_task_info.retry_count == 1  # the pool's start task is retried once before giving up
    with get_client(sync_client=True) as client:
        ended = client.read_flow_run(state.state_details.flow_run_id).end_time
    delay = (ended - node.state_transition_time).total_seconds()
    assert delay < 150, "the run waited for the monitoring timeout instead of noticing the node"
    observe(f"run Failed: `{error.message}`")
    observe(f"flow run ended {delay:.1f}s after the node turned starttaskfailed (poll interval 0.5s)")

    # The cause mended (here: the fault cleared; in life: a lost application blob staged again, an expired SAS),
    # the same run again reboots the node so that it runs the pool's start task once more, then completes.
    faults("")
    files = sorted((tmp_path / "in").iterdir())
    rerun = _run(files, tmp_path / "out")

    assert rerun.is_completed(), rerun.message
    job_id = next(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    check_outputs(tmp_path / "out" / job_id, files, 3, job_id, stack.pool_id)
    node = next(iter(stack.batch.list_nodes(stack.pool_id)))
    assert node.state in ("idle", "running")
    assert node.start_task_info.result == "success"
    assert node.last_boot_time > ended
    observe("the same run again: node rebooted, its start task succeeded, every output verified")


@pytest.mark.scenario(
    "Faults",
    "the node running each task is preempted once (preempt=topn-*), 4 inputs",
    "the tasks are requeued and the run completes with every output",
)
def test_preempted_tasks_are_requeued_and_the_run_completes(
    stack: Any,
    emulator: Any,
    faults: Callable[[str], None],
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    job_tasks: Callable[..., list[Any]],
    observe: Callable[[str], None],
    tmp_path: Path,
) -> None:
    sources = inputs(tmp_path / "in", 4)
    before = emulator.stats()
    faults("preempt=topn-*")

    state = _run(sources, tmp_path / "out")

    assert state.is_completed(), state.message
    summary = state.result()
    after = emulator.stats()
    started = after["tasksStarted"] - before["tasksStarted"]
    completed = after["tasksCompleted"] - before["tasksCompleted"]
    assert completed == len(sources)
    assert started > completed  # preempted runs were started again
    job_tasks(stack.batch, summary["job_id"], sources)
    verified = check_outputs(Path(summary["output_dir"]), sources, 3, summary["job_id"], stack.pool_id)
    observe(f"{started} task starts for {completed} completions (preempted runs requeued); run Completed")
    observe(f"{verified} outputs verified, one task per input")
