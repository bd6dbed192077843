"""Job manager, job preparation and job release tasks through the unmodified azure-batch 15 SDK."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from batch_emulator.server import ThreadedEmulator

POOL = "jobtasks-pool"
M = batch_models
ECHO_PREP = '/bin/bash -c "echo prep >> $AZ_BATCH_NODE_SHARED_DIR/$AZ_BATCH_JOB_ID.log; echo ready > prepared.txt"'
ECHO_RELEASE = '/bin/bash -c "echo release >> $AZ_BATCH_NODE_SHARED_DIR/$AZ_BATCH_JOB_ID.log"'


@pytest.fixture(scope="module")
def client(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    batch: BatchClient = helpers.make_client(emulator)
    helpers.ready_pool(batch, POOL, nodes=2, slots=2)
    return batch


@pytest.fixture(scope="module")
def account_root(emulator: ThreadedEmulator) -> Any:
    return lambda node_id: Path(emulator.service.account.node_root(POOL, node_id))


def new_job(client: BatchClient, job_id: str, **options: Any) -> None:
    client.create_job(M.BatchJobCreateOptions(id=job_id, pool_info=M.BatchPoolInfo(pool_id=POOL), **options))


def task(task_id: str, command: str = "/bin/true", **options: Any) -> M.BatchTaskCreateOptions:
    return M.BatchTaskCreateOptions(id=task_id, command_line=command, **options)


def job_state(helpers: Any, client: BatchClient, job_id: str, state: str) -> Any:
    return helpers.wait_until(
        lambda: (found := client.get_job(job_id)).state == state and found, what=f"{job_id} {state}"
    )


def test_preparation_runs_once_per_node_before_tasks_and_release_when_the_job_ends(
    client: BatchClient, account_root: Any, helpers: Any
) -> None:
    new_job(
        client,
        "prep-job",
        job_preparation_task=M.BatchJobPreparationTask(command_line=ECHO_PREP),
        job_release_task=M.BatchJobReleaseTask(command_line=ECHO_RELEASE),
    )
    job = client.get_job("prep-job")
    assert job.job_preparation_task is not None
    assert (job.job_preparation_task.id, job.job_preparation_task.wait_for_success) == ("jobpreparation", True)
    assert job.job_release_task is not None
    assert (job.job_release_task.id, job.job_release_task.max_wall_clock_time) == ("jobrelease", timedelta(minutes=15))
    command = '/bin/bash -c "cat $AZ_BATCH_JOB_PREP_WORKING_DIR/prepared.txt"'
    client.create_tasks("prep-job", [task(f"t{i}", command) for i in range(6)])
    helpers.wait_for_tasks(client, "prep-job", 6)
    outputs = {b"".join(client.download_task_file("prep-job", f"t{i}", "stdout.txt")) for i in range(6)}
    assert outputs == {b"ready\n"}
    statuses = list(client.list_job_preparation_and_release_task_status("prep-job"))
    used = {t.node_info.node_id for t in client.list_tasks("prep-job") if t.node_info is not None}
    assert {s.node_id for s in statuses} == used
    for status in statuses:
        info = status.job_preparation_task_execution_info
        assert info is not None
        assert (info.state, info.exit_code, info.result) == ("completed", 0, "success")
        assert info.task_root_directory == "workitems/prep-job/job-1/jobpreparation"
        assert status.job_release_task_execution_info is None
    options = M._models.BatchJobTerminateOptions(termination_reason="UserTerminate")
    client.begin_terminate_job("prep-job", options, polling_interval=0).result()
    assert client.get_job("prep-job").state == "completed"  # the poller waits for the release tasks
    for status in client.list_job_preparation_and_release_task_status("prep-job"):
        release = status.job_release_task_execution_info
        assert release is not None
        assert (release.state, release.exit_code) == ("completed", 0)
        log = (account_root(status.node_id) / "shared" / "prep-job.log").read_text()
        assert log == "prep\nrelease\n"  # preparation once per node, release once when the job ended


def test_failed_preparation_with_wait_for_success_keeps_tasks_off_the_node(client: BatchClient, helpers: Any) -> None:
    new_job(
        client,
        "prep-fail-job",
        job_preparation_task=M.BatchJobPreparationTask(
            command_line="/bin/bash -c 'exit 7'", constraints=M.BatchTaskConstraints(max_task_retry_count=1)
        ),
    )
    client.create_task("prep-fail-job", task("never"))

    def failed_everywhere() -> list[Any] | None:
        statuses = list(client.list_job_preparation_and_release_task_status("prep-fail-job"))
        done = [s for s in statuses if s.job_preparation_task_execution_info.state == "completed"]
        return statuses if len(done) == 2 else None

    statuses = helpers.wait_until(failed_everywhere, what="preparation failed on both nodes")
    for status in statuses:
        info = status.job_preparation_task_execution_info
        assert (info.exit_code, info.result, info.retry_count) == (7, "failure", 1)
        assert info.failure_info.code == "FailureExitCode"
    helpers.wait_until(lambda: client.get_task("prep-fail-job", "never").state == "active", what="task requeued")


def test_preparation_without_wait_for_success_lets_tasks_run(client: BatchClient, helpers: Any) -> None:
    new_job(
        client,
        "prep-nowait-job",
        job_preparation_task=M.BatchJobPreparationTask(command_line="/bin/false", wait_for_success=False),
    )
    client.create_task("prep-nowait-job", task("runs"))
    helpers.wait_for_tasks(client, "prep-nowait-job", 1)
    assert client.get_task("prep-nowait-job", "runs").execution_info.result == "success"


def test_job_manager_runs_first_exclusively_and_its_completion_ends_the_job(
    client: BatchClient, account_root: Any, helpers: Any
) -> None:
    manager = M.BatchJobManagerTask(
        id="manager",
        command_line='/bin/bash -c "while [ ! -e $AZ_BATCH_NODE_SHARED_DIR/manager-go ]; do sleep 0.02; done"',
    )
    new_job(client, "jm-job", job_manager_task=manager)
    running = helpers.wait_until(
        lambda: (found := client.get_task("jm-job", "manager")).state == "running" and found, what="manager running"
    )
    assert running.required_slots == 2  # runExclusive (the default): the whole node
    client.create_tasks("jm-job", [task(f"w{i}") for i in range(3)])
    helpers.wait_until(lambda: client.get_job_task_counts("jm-job").task_counts.completed == 3, what="workers")
    workers = {t.node_info.node_id for t in client.list_tasks("jm-job") if t.id != "manager"}
    assert running.node_info.node_id not in workers
    assert client.get_job("jm-job").state == "active"
    (account_root(running.node_info.node_id) / "shared" / "manager-go").write_text("")
    job = job_state(helpers, client, "jm-job", "completed")
    assert job.execution_info.termination_reason == "JMComplete"


def test_job_without_preparation_has_no_status(client: BatchClient) -> None:
    new_job(client, "plain-job")
    with pytest.raises(HttpResponseError) as caught:
        list(client.list_job_preparation_and_release_task_status("plain-job"))
    assert caught.value.status_code == 409
    assert caught.value.error is not None
    assert caught.value.error.code == "JobPreparationTaskOrReleaseTaskNotSpecified"


def test_task_id_of_the_preparation_task_is_refused(client: BatchClient) -> None:
    new_job(client, "clash-job", job_preparation_task=M.BatchJobPreparationTask(command_line="/bin/true"))
    with pytest.raises(HttpResponseError) as caught:
        client.create_task("clash-job", task("jobpreparation"))
    assert caught.value.error is not None
    assert caught.value.error.code == "TaskIdSameAsJobPreparationTask"


def test_deleting_a_job_stops_its_running_preparation_task(client: BatchClient, helpers: Any) -> None:
    new_job(client, "prep-slow-job", job_preparation_task=M.BatchJobPreparationTask(command_line="/bin/sleep 60"))
    client.create_task("prep-slow-job", task("waits"))
    helpers.wait_until(
        lambda: list(client.list_job_preparation_and_release_task_status("prep-slow-job")), what="preparation"
    )
    assert client.get_task("prep-slow-job", "waits").state == "preparing"
    client.begin_delete_job("prep-slow-job", polling_interval=0).result()  # returns once the job is gone
    assert "prep-slow-job" not in {job.id for job in client.list_jobs()}
