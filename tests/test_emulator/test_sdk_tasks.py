"""Task and job behaviour through azure-batch 15: retries, wall clock, terminate, reactivate, delete, job actions."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from batch_emulator.server import ThreadedEmulator

POOL = "tasks-pool"


@pytest.fixture(scope="module")
def pool_client(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    client: BatchClient = helpers.make_client(emulator)
    helpers.ready_pool(client, POOL, nodes=1, slots=4)
    return client


def new_job(client: BatchClient, job_id: str, pool_id: str = POOL, **options: Any) -> None:
    client.create_job(
        batch_models.BatchJobCreateOptions(id=job_id, pool_info=batch_models.BatchPoolInfo(pool_id=pool_id), **options)
    )


def task(task_id: str, command: str, **options: Any) -> batch_models.BatchTaskCreateOptions:
    return batch_models.BatchTaskCreateOptions(id=task_id, command_line=command, **options)


def wait_task_state(helpers: Any, client: BatchClient, job_id: str, task_id: str, state: str) -> Any:
    return helpers.wait_until(
        lambda: (found := client.get_task(job_id, task_id)).state == state and found,
        what=f"{task_id} {state}",
    )


def test_failing_task_is_retried_up_to_max_task_retry_count(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "retry-job")
    constraints = batch_models.BatchTaskConstraints(max_task_retry_count=2)
    pool_client.create_task("retry-job", task("fails", '/bin/bash -c "echo try >&2; exit 3"', constraints=constraints))
    done = wait_task_state(helpers, pool_client, "retry-job", "fails", "completed")
    assert done.execution_info.exit_code == 3
    assert done.execution_info.result == "failure"
    assert done.execution_info.retry_count == 2
    assert done.execution_info.failure_info.code == "FailureExitCode"
    assert done.execution_info.failure_info.category == "usererror"
    assert done.execution_info.last_retry_time is not None
    counts = pool_client.get_job_task_counts("retry-job").task_counts
    assert (counts.completed, counts.failed, counts.succeeded) == (1, 1, 0)
    stderr = b"".join(pool_client.download_task_file("retry-job", "fails", "stderr.txt"))
    assert stderr.endswith(b"try\n")


def test_max_wall_clock_time_ends_a_task(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "wall-job")
    constraints = batch_models.BatchTaskConstraints(max_wall_clock_time="PT0.3S", max_task_retry_count=3)
    pool_client.create_task("wall-job", task("slow", "/bin/sleep 30", constraints=constraints))
    done = wait_task_state(helpers, pool_client, "wall-job", "slow", "completed")
    assert done.execution_info.result == "failure"
    assert done.execution_info.retry_count == 0
    assert done.execution_info.failure_info is not None


def test_terminate_a_running_task(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "term-task-job")
    pool_client.create_task("term-task-job", task("sleeper", "/bin/sleep 30"))
    wait_task_state(helpers, pool_client, "term-task-job", "sleeper", "running")
    pool_client.terminate_task("term-task-job", "sleeper")
    done = wait_task_state(helpers, pool_client, "term-task-job", "sleeper", "completed")
    assert done.execution_info.result == "failure"
    assert done.execution_info.failure_info.code == "TaskEnded"


def test_reactivate_a_failed_task(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "react-job")
    pool_client.create_task("react-job", task("once", '/bin/bash -c "exit 1"'))
    wait_task_state(helpers, pool_client, "react-job", "once", "completed")
    pool_client.reactivate_task("react-job", "once")
    again = wait_task_state(helpers, pool_client, "react-job", "once", "completed")
    assert again.execution_info.retry_count == 0
    assert again.previous_state in ("running", "preparing")


def test_delete_task(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "del-task-job")
    pool_client.create_task("del-task-job", task("gone", "/bin/sleep 30"))
    wait_task_state(helpers, pool_client, "del-task-job", "gone", "running")
    pool_client.delete_task("del-task-job", "gone")
    with pytest.raises(ResourceNotFoundError) as caught:
        pool_client.get_task("del-task-job", "gone")
    assert caught.value.error.code == "TaskNotFound"
    assert pool_client.get_job_task_counts("del-task-job").task_counts.running == 0


def test_environment_and_no_shell(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "env-job", common_environment_settings=[batch_models.EnvironmentSetting(name="A", value="1")])
    settings = [batch_models.EnvironmentSetting(name="B", value="two")]
    pool_client.create_task(
        "env-job",
        task("env", '/bin/bash -c "echo $A $B $AZ_BATCH_TASK_ID $AZ_BATCH_JOB_ID"', environment_settings=settings),
    )
    pool_client.create_task("env-job", task("literal", "/bin/echo $B"))
    helpers.wait_for_tasks(pool_client, "env-job", 2)
    assert b"".join(pool_client.download_task_file("env-job", "env", "stdout.txt")) == b"1 two env env-job\n"
    assert b"".join(pool_client.download_task_file("env-job", "literal", "stdout.txt")) == b"$B\n"


def test_on_all_tasks_complete_terminates_the_job(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "auto-job")
    pool_client.create_tasks("auto-job", [task(f"a{i}", "/bin/true") for i in range(5)])
    pool_client.update_job("auto-job", batch_models.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    job = helpers.wait_until(
        lambda: (found := pool_client.get_job("auto-job")).state == "completed" and found, what="job completed"
    )
    assert job.execution_info.termination_reason == "AllTasksComplete"
    with pytest.raises(ResourceExistsError) as caught:
        pool_client.create_task("auto-job", task("late", "/bin/true"))
    assert caught.value.error.code == "JobCompleted"


def test_terminate_job_ends_running_tasks_and_keeps_active_ones(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "term-job", max_parallel_tasks=1)
    pool_client.create_tasks("term-job", [task("first", "/bin/sleep 30"), task("second", "/bin/sleep 30")])
    helpers.wait_until(
        lambda: pool_client.get_job_task_counts("term-job").task_counts.running == 1, what="one running task"
    )
    options = batch_models._models.BatchJobTerminateOptions(termination_reason="UserTerminate")
    poller = pool_client.begin_terminate_job("term-job", options, polling_interval=0)
    poller.result()
    assert pool_client.get_job("term-job").state == "completed"
    states = {item.id: item for item in pool_client.list_tasks("term-job")}
    ended = [item for item in states.values() if item.state == "completed"]
    waiting = [item for item in states.values() if item.state == "active"]
    assert len(ended) == len(waiting) == 1
    assert ended[0].execution_info.failure_info.code == "TaskEnded"


def test_delete_job_with_running_tasks(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "del-job")
    pool_client.create_tasks("del-job", [task(f"d{i}", "/bin/sleep 30") for i in range(3)])
    helpers.wait_until(lambda: pool_client.get_job_task_counts("del-job").task_counts.running == 3, what="3 running")
    pool_client.begin_delete_job("del-job", polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError):
        pool_client.get_job("del-job")


def test_tasks_of_a_job_without_its_pool_stay_active(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "orphan-job", pool_id="missing-pool")
    pool_client.create_task("orphan-job", task("waits", "/bin/true"))
    pool_client.create_task("orphan-job", task("waits-too", "/bin/true"))
    counts = pool_client.get_job_task_counts("orphan-job").task_counts
    assert counts.active == 2
    assert pool_client.get_task("orphan-job", "waits").state == "active"


def test_required_slots_and_max_parallel_tasks(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "slots-job")
    pool_client.create_tasks("slots-job", [task(f"s{i}", "/bin/sleep 30", required_slots=2) for i in range(3)])
    helpers.wait_until(
        lambda: pool_client.get_job_task_counts("slots-job").task_slot_counts.running == 4, what="4 slots in use"
    )
    counts = pool_client.get_job_task_counts("slots-job")
    assert (counts.task_counts.running, counts.task_counts.active) == (2, 1)
    pool_client.begin_delete_job("slots-job", polling_interval=0).result()


def test_disable_requeues_and_enable_resumes(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "disable-job")
    pool_client.create_task("disable-job", task("paused", '/bin/bash -c "test -f again || { touch again; sleep 30; }"'))
    helpers.wait_until(
        lambda: helpers.has_file(pool_client, "disable-job", "paused", "wd/again"), what="the marker file"
    )
    options = batch_models.BatchJobDisableOptions(disable_tasks="requeue")
    pool_client.begin_disable_job("disable-job", options, polling_interval=0).result()
    assert pool_client.get_job("disable-job").state == "disabled"
    waiting = pool_client.get_task("disable-job", "paused")
    assert (waiting.state, waiting.execution_info.requeue_count) == ("active", 1)
    pool_client.begin_enable_job("disable-job", polling_interval=0).result()
    assert pool_client.get_job("disable-job").state == "active"
    done = wait_task_state(helpers, pool_client, "disable-job", "paused", "completed")
    assert done.execution_info.exit_code == 0


def test_replace_constraints_and_list_subtasks(pool_client: BatchClient, helpers: Any) -> None:
    new_job(pool_client, "misc-job", pool_id="no-pool-yet")
    pool_client.create_task("misc-job", task("tuned", '/bin/bash -c "echo out > wd.txt; exit 2"'))
    constraints = batch_models.BatchTaskConstraints(max_task_retry_count=1)
    pool_client.replace_task("misc-job", "tuned", batch_models.BatchTask(constraints=constraints))
    assert pool_client.get_task("misc-job", "tuned").constraints.max_task_retry_count == 1
    assert list(pool_client.list_subtasks("misc-job", "tuned")) == []
    pool_client.update_job("misc-job", batch_models.BatchJobUpdateOptions(priority=1))
    assert pool_client.get_job("misc-job").priority == 1
    pool_client.begin_delete_job("misc-job", polling_interval=0).result()
