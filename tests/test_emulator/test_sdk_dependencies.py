"""Task dependencies and exit conditions through the unmodified azure-batch 15 SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from batch_emulator.server import ThreadedEmulator

POOL = "deps-pool"
M = batch_models


@pytest.fixture(scope="module")
def client(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    batch: BatchClient = helpers.make_client(emulator)
    helpers.ready_pool(batch, POOL, nodes=1, slots=8)
    return batch


@pytest.fixture(scope="module")
def shared(emulator: ThreadedEmulator, client: BatchClient) -> Path:
    """The shared directory of the pool's one node (tests drop files there to release gated tasks)."""
    node = next(iter(client.list_nodes(POOL)))
    return emulator.service.account.node_root(POOL, node.id) / "shared"


def new_job(client: BatchClient, job_id: str, **options: Any) -> None:
    options.setdefault("uses_task_dependencies", True)
    client.create_job(M.BatchJobCreateOptions(id=job_id, pool_info=M.BatchPoolInfo(pool_id=POOL), **options))


def task(task_id: str, command: str = "/bin/true", **options: Any) -> M.BatchTaskCreateOptions:
    return M.BatchTaskCreateOptions(id=task_id, command_line=command, **options)


def depends(ids: list[str] | None = None, ranges: list[tuple[int, int]] | None = None) -> M.BatchTaskDependencies:
    return M.BatchTaskDependencies(
        task_ids=ids, task_id_ranges=[M.BatchTaskIdRange(start=s, end=e) for s, e in ranges or []] or None
    )


def completed(helpers: Any, client: BatchClient, job_id: str, task_id: str) -> Any:
    return helpers.wait_until(
        lambda: (found := client.get_task(job_id, task_id)).state == "completed" and found,
        what=f"{task_id} completed",
    )


def test_dependent_runs_only_after_what_it_depends_on_succeeded(
    client: BatchClient, shared: Path, helpers: Any
) -> None:
    new_job(client, "order-job")
    gate = '/bin/bash -c "while [ ! -e $AZ_BATCH_NODE_SHARED_DIR/order-go ]; do sleep 0.02; done; date +%s.%N"'
    client.create_task("order-job", task("first", gate))
    client.create_task("order-job", task("second", "/bin/bash -c 'date +%s.%N'", depends_on=depends(["first"])))
    helpers.wait_until(lambda: client.get_task("order-job", "first").state == "running", what="first running")
    waiting = client.get_task("order-job", "second")
    assert waiting.state == "active"
    assert waiting.depends_on is not None
    assert waiting.depends_on.task_ids == ["first"]
    (shared / "order-go").write_text("")
    first, second = completed(helpers, client, "order-job", "first"), completed(helpers, client, "order-job", "second")
    assert second.execution_info.start_time >= first.execution_info.end_time
    assert second.execution_info.result == "success"


def test_failed_dependency_blocks_unless_its_exit_options_satisfy(client: BatchClient, helpers: Any) -> None:
    new_job(client, "block-job")
    satisfy = M.ExitConditions(
        exit_codes=[M.ExitCodeMapping(code=3, exit_options=M.ExitOptions(dependency_action="satisfy"))]
    )
    client.create_tasks(
        "block-job",
        [
            task("fails-blocks", "/bin/bash -c 'exit 2'"),
            task("fails-satisfies", "/bin/bash -c 'exit 3'", exit_conditions=satisfy),
            task("blocked", depends_on=depends(["fails-blocks"])),
            task("freed", depends_on=depends(["fails-satisfies"])),
        ],
    )
    freed = completed(helpers, client, "block-job", "freed")
    assert freed.execution_info.result == "success"
    assert completed(helpers, client, "block-job", "fails-blocks").execution_info.exit_code == 2
    assert client.get_task("block-job", "blocked").state == "active"
    counts = client.get_job_task_counts("block-job").task_counts
    assert (counts.active, counts.completed) == (1, 3)


def test_reactivated_blocking_task_that_succeeds_releases_its_dependents(
    client: BatchClient, shared: Path, helpers: Any
) -> None:
    new_job(client, "react-dep-job")
    flag = "$AZ_BATCH_NODE_SHARED_DIR/react-dep-ok"
    client.create_task("react-dep-job", task("flaky", f"/bin/bash -c 'test -e {flag}'"))
    client.create_task("react-dep-job", task("after", depends_on=depends(["flaky"])))
    assert completed(helpers, client, "react-dep-job", "flaky").execution_info.result == "failure"
    (shared / "react-dep-ok").write_text("")
    client.reactivate_task("react-dep-job", "flaky")
    assert completed(helpers, client, "react-dep-job", "after").execution_info.result == "success"


def test_a_dependency_added_later_is_waited_for(client: BatchClient, helpers: Any) -> None:
    new_job(client, "late-job")
    client.create_task("late-job", task("waits", depends_on=depends(ranges=[(1, 2)])))
    client.create_task("late-job", task("1"))
    completed(helpers, client, "late-job", "1")
    assert client.get_task("late-job", "waits").state == "active"
    client.create_task("late-job", task("2"))
    assert completed(helpers, client, "late-job", "waits").execution_info.result == "success"


def test_large_dag_through_create_tasks(client: BatchClient, helpers: Any) -> None:
    """1,101 tasks through the SDK's parallel add-collection path: a 100-task DAG runs in dependency order, and
    1,000 tasks that also wait for a failing task stay blocked (only 101 processes run)."""
    new_job(client, "dag-job")
    ran, width = 100, 8  # task i < 100 waits for the range i-2w..i-w
    tasks = [task(str(i)) for i in range(width)]
    tasks += [task(str(i), depends_on=depends(ranges=[(max(0, i - 2 * width), i - width)])) for i in range(width, ran)]
    tasks.append(task("gate", "/bin/false"))
    tasks += [task(str(i), depends_on=depends(["gate"], ranges=[(i - ran, i - ran)])) for i in range(ran, ran + 1000)]
    results = client.create_tasks("dag-job", tasks)
    values = results.result_values or []
    assert len(values) == len(tasks)
    assert all(result.status == "success" for result in values)
    counts = helpers.wait_for_tasks(client, "dag-job", ran + 1, timeout=60)
    assert (counts.task_counts.active, counts.task_counts.failed) == (1000, 1)
    runs: dict[str, Any] = {t.id: t.execution_info for t in client.list_tasks("dag-job", filter="state eq 'completed'")}
    for i in range(width, ran):
        for j in range(max(0, i - 2 * width), i - width + 1):
            assert runs[str(i)].start_time >= runs[str(j)].end_time


def test_depends_on_needs_a_job_with_task_dependencies(client: BatchClient) -> None:
    new_job(client, "no-deps-job", uses_task_dependencies=False)
    with pytest.raises(HttpResponseError) as caught:
        client.create_task("no-deps-job", task("child", depends_on=depends(["x"])))
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "TaskDependenciesNotSpecifiedOnJob"
    with pytest.raises(M.CreateTasksError) as refused:
        client.create_tasks("no-deps-job", [task("ok"), task("child", depends_on=depends(["ok"]))])
    assert [(result.task_id, result.error.code) for result in refused.value.failure_tasks] == [
        ("child", "TaskDependenciesNotSpecifiedOnJob")
    ]
    assert client.get_task("no-deps-job", "ok").id == "ok"


def test_exit_condition_job_action_terminates_the_job(client: BatchClient, helpers: Any) -> None:
    new_job(client, "exit-term-job", uses_task_dependencies=False, task_failure_mode="performexitoptionsjobaction")
    ignore_4 = M.ExitConditions(
        exit_codes=[M.ExitCodeMapping(code=4, exit_options=M.ExitOptions(job_action="none"))],
        default=M.ExitOptions(job_action="terminate"),
    )
    client.create_task("exit-term-job", task("tolerated", "/bin/bash -c 'exit 4'", exit_conditions=ignore_4))
    completed(helpers, client, "exit-term-job", "tolerated")
    assert client.get_job("exit-term-job").state == "active"
    client.create_task("exit-term-job", task("fatal", "/bin/bash -c 'exit 9'", exit_conditions=ignore_4))
    job = helpers.wait_until(
        lambda: (found := client.get_job("exit-term-job")).state == "completed" and found, what="job completed"
    )
    assert job.execution_info.termination_reason == "TaskFailed"


def test_exit_condition_job_action_disables_the_job(client: BatchClient, helpers: Any) -> None:
    new_job(client, "exit-disable-job", uses_task_dependencies=False, task_failure_mode="performexitoptionsjobaction")
    disable = M.ExitConditions(
        exit_code_ranges=[M.ExitCodeRangeMapping(start=1, end=9, exit_options=M.ExitOptions(job_action="disable"))]
    )
    client.create_task("exit-disable-job", task("trips", "/bin/bash -c 'exit 5'", exit_conditions=disable))
    helpers.wait_until(lambda: client.get_job("exit-disable-job").state == "disabled", what="job disabled")


def test_on_task_failure_without_exit_conditions_terminates_on_failure(client: BatchClient, helpers: Any) -> None:
    new_job(client, "exit-default-job", uses_task_dependencies=False, task_failure_mode="performexitoptionsjobaction")
    client.create_task("exit-default-job", task("ok"))
    completed(helpers, client, "exit-default-job", "ok")
    assert client.get_job("exit-default-job").state == "active"
    client.create_task("exit-default-job", task("bad", "/bin/false"))
    job = helpers.wait_until(
        lambda: (found := client.get_job("exit-default-job")).state == "completed" and found, what="job completed"
    )
    assert job.execution_info.termination_reason == "TaskFailed"


def test_job_action_needs_perform_exit_options_job_action(client: BatchClient) -> None:
    new_job(client, "exit-noaction-job", uses_task_dependencies=False)
    conditions = M.ExitConditions(default=M.ExitOptions(job_action="terminate"))
    with pytest.raises(HttpResponseError) as caught:
        client.create_task("exit-noaction-job", task("t", exit_conditions=conditions))
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidPropertyValue"


def test_pre_processing_error_options_apply_to_a_task_that_could_not_start(client: BatchClient, helpers: Any) -> None:
    new_job(client, "preproc-job", task_failure_mode="performexitoptionsjobaction")
    tolerate = M.ExitConditions(pre_processing_error=M.ExitOptions(job_action="none", dependency_action="satisfy"))
    missing = [M.ResourceFile(http_url="http://127.0.0.1:9/missing.txt", file_path="missing.txt")]
    client.create_task("preproc-job", task("fetch", resource_files=missing, exit_conditions=tolerate))
    client.create_task("preproc-job", task("next", depends_on=depends(["fetch"])))
    assert completed(helpers, client, "preproc-job", "next").execution_info.result == "success"
    fetch = client.get_task("preproc-job", "fetch")
    assert fetch.execution_info.exit_code is None
    assert fetch.execution_info.failure_info is not None
    assert client.get_job("preproc-job").state == "active"
