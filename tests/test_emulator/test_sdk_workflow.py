"""The whole Batch workflow driven by the unmodified azure-batch 15 client against the local service."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import ResourceNotFoundError

from batch_emulator.server import ThreadedEmulator

POOL = "workflow-pool"
JOB = "workflow-job"
TASKS = 250


@pytest.fixture(scope="module")
def workflow(emulator: ThreadedEmulator, helpers: Any) -> dict[str, Any]:
    """A pool of 2 nodes x 4 slots with a start task, a job and 250 completed tasks (built once)."""
    client: BatchClient = helpers.make_client(emulator)
    start_task = batch_models.BatchStartTask(
        command_line='/bin/bash -c "echo node ready on $AZ_BATCH_NODE_ID"', wait_for_success=True
    )
    nodes = helpers.ready_pool(client, POOL, nodes=2, slots=4, start_task=start_task)
    client.create_job(batch_models.BatchJobCreateOptions(id=JOB, pool_info=batch_models.BatchPoolInfo(pool_id=POOL)))
    tasks = [
        batch_models.BatchTaskCreateOptions(id=f"task-{index:03d}", command_line=f'/bin/bash -c "echo hello {index}"')
        for index in range(TASKS)
    ]
    result = client.create_tasks(JOB, tasks, max_concurrency=2)
    counts = helpers.wait_for_tasks(client, JOB, TASKS)
    return {"client": client, "nodes": nodes, "create_result": result, "counts": counts}


def test_pool_allocates_nodes_that_ran_the_start_task(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    pool = client.get_pool(POOL)
    assert pool.allocation_state == "steady"
    assert pool.current_dedicated_nodes == 2
    assert pool.task_slots_per_node == 4
    for node in workflow["nodes"]:
        assert node.start_task_info.state == "completed"
        assert node.start_task_info.exit_code == 0
        assert node.start_task_info.result == "success"
        output = b"".join(client.download_node_file(POOL, node.id, "startup/stdout.txt"))
        assert output.decode() == f"node ready on {node.id}\n"


def test_create_tasks_reports_every_task_as_added(workflow: dict[str, Any]) -> None:
    results = workflow["create_result"].result_values
    assert len(results) == TASKS
    assert {item.status for item in results} == {"success"}


def test_task_counts_after_completion(workflow: dict[str, Any]) -> None:
    counts = workflow["counts"]
    assert counts.task_counts.completed == TASKS
    assert counts.task_counts.succeeded == TASKS
    assert counts.task_counts.failed == 0
    assert counts.task_counts.active == counts.task_counts.running == 0
    assert counts.task_slot_counts.completed == TASKS


def test_completed_task_has_execution_and_node_info(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    task = client.get_task(JOB, "task-042")
    assert task.state == "completed"
    assert task.execution_info.exit_code == 0
    assert task.execution_info.result == "success"
    assert task.execution_info.retry_count == 0
    assert task.execution_info.start_time <= task.execution_info.end_time
    assert task.node_info.pool_id == POOL
    assert task.node_info.node_id in {node.id for node in workflow["nodes"]}
    assert task.node_info.task_root_directory == f"workitems/{JOB}/job-1/task-042"


def test_tasks_are_spread_across_nodes(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    used = {task.node_info.node_id for task in client.list_tasks(JOB, select=["id", "nodeInfo"])}
    assert used == {node.id for node in workflow["nodes"]}


def test_stdout_download_range_and_properties(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    assert b"".join(client.download_task_file(JOB, "task-007", "stdout.txt")) == b"hello 7\n"
    assert b"".join(client.download_task_file(JOB, "task-007", "stdout.txt", ocp_range="bytes=0-3")) == b"hell"
    properties = client.get_task_file_properties(JOB, "task-007", "stdout.txt")
    assert int(properties.content_length) == len(b"hello 7\n")
    assert str(properties.is_directory).lower() == "false"
    assert properties.url.endswith("/files/stdout.txt")
    assert properties.file_mode.startswith("0100")


def test_task_files_list_recursively(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    flat = {item.name: item for item in client.list_task_files(JOB, "task-001")}
    assert set(flat) == {"stdout.txt", "stderr.txt", "wd"}
    assert flat["wd"].is_directory is True
    assert flat["stdout.txt"].properties.content_length == len(b"hello 1\n")


def test_missing_file_is_file_not_found(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    with pytest.raises(ResourceNotFoundError) as caught:
        b"".join(client.download_task_file(JOB, "task-001", "wd/nothing.txt"))
    assert caught.value.status_code == 404  # a streamed download leaves the error body unread


def test_delete_a_task_file(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    client.delete_task_file(JOB, "task-003", "stderr.txt")
    names = {item.name for item in client.list_task_files(JOB, "task-003")}
    assert names == {"stdout.txt", "wd"}


def test_terminate_then_delete_job_and_pool(workflow: dict[str, Any]) -> None:
    client: BatchClient = workflow["client"]
    options = batch_models._models.BatchJobTerminateOptions(termination_reason="Finished")
    client.begin_terminate_job(JOB, options, polling_interval=0).result()
    job = client.get_job(JOB)
    assert job.state == "completed"
    assert job.execution_info.termination_reason == "Finished"
    client.begin_delete_job(JOB, polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_job(JOB)
    client.begin_delete_pool(POOL, polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError) as caught:
        client.get_pool(POOL)
    assert caught.value.error.code == "PoolNotFound"
