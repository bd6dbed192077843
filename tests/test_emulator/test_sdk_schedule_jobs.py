"""The jobs a job schedule makes, through azure-batch 15: their auto pools (``poolLifetimeOption`` jobschedule
and job) and their job manager, preparation and release tasks, made as ``create_job`` makes them. The service
runs 600 times faster (a 1-minute recurrence lasts 0.1 s)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import ResourceNotFoundError

from batch_emulator.server import ThreadedEmulator

M = batch_models
UBUNTU_2204 = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}
GUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"


@pytest.fixture(scope="module")
def client(scaled_emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    batch: BatchClient = helpers.make_client(scaled_emulator)
    return batch


def auto_pool(lifetime: str, **options: Any) -> M.BatchPoolInfo:
    pool = M.BatchPoolSpecification(
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=M.VirtualMachineConfiguration(
            image_reference=M.BatchVmImageReference(**UBUNTU_2204), node_agent_sku_id="batch.node.ubuntu 22.04"
        ),
        target_dedicated_nodes=1,
    )
    spec = M.BatchAutoPoolSpecification(pool_lifetime_option=lifetime, pool=pool, **options)
    return M.BatchPoolInfo(auto_pool_specification=spec)


def create_schedule(client: BatchClient, schedule_id: str, spec: M.BatchJobSpecification) -> None:
    every_minute = M.BatchJobScheduleConfiguration(recurrence_interval=timedelta(minutes=1))
    client.create_job_schedule(
        M.BatchJobScheduleCreateOptions(id=schedule_id, schedule=every_minute, job_specification=spec)
    )


def manager(command: str = "/bin/sh -c 'echo managed'") -> M.BatchJobManagerTask:
    """A job manager whose completion ends its job (``killJobOnCompletion`` is true by default)."""
    return M.BatchJobManagerTask(id="manager", command_line=command)


def completed_jobs(helpers: Any, client: BatchClient, schedule_id: str, count: int) -> list[M.BatchJob]:
    """The schedule's first ``count`` jobs, once they have all completed."""

    def done() -> list[M.BatchJob] | None:
        jobs = sorted(client.list_jobs_from_schedule(schedule_id), key=lambda job: job.creation_time)[:count]
        return jobs if len(jobs) == count and all(job.state == "completed" for job in jobs) else None

    return list(helpers.wait_until(done, timeout=30, what=f"{count} completed jobs of {schedule_id}"))


def pool_gone(client: BatchClient, pool_id: str) -> bool:
    try:
        client.get_pool(pool_id)
    except ResourceNotFoundError:
        return True
    return False


def test_a_jobschedule_auto_pool_serves_every_job_and_goes_with_the_schedule(client: BatchClient, helpers: Any) -> None:
    spec = M.BatchJobSpecification(
        pool_info=auto_pool("jobschedule", auto_pool_id_prefix="nightly"), job_manager_task=manager()
    )
    create_schedule(client, "shared-pool", spec)
    jobs = completed_jobs(helpers, client, "shared-pool", 2)  # each ends when its job manager completes
    pool_ids = {job.execution_info.pool_id for job in jobs}
    assert len(pool_ids) == 1
    (pool_id,) = pool_ids
    assert re.fullmatch(f"nightly_{GUID}", pool_id)
    for job in jobs:
        assert job.execution_info.termination_reason == "JMComplete"
        task = client.get_task(job.id, "manager")
        assert (task.execution_info.exit_code, task.node_info.pool_id) == (0, pool_id)
        assert b"".join(client.download_task_file(job.id, "manager", "stdout.txt")) == b"managed\n"
    assert client.get_pool(pool_id).state == "active"  # the schedule still runs
    shown = client.get_job_schedule("shared-pool").job_specification.pool_info.auto_pool_specification
    assert (shown.pool_lifetime_option, shown.auto_pool_id_prefix) == ("jobschedule", "nightly")
    client.begin_delete_job_schedule("shared-pool", polling_interval=0).result()
    helpers.wait_until(lambda: pool_gone(client, pool_id), what="the schedule's pool deleted")


def test_keep_alive_keeps_the_schedules_pool(client: BatchClient, helpers: Any) -> None:
    spec = M.BatchJobSpecification(pool_info=auto_pool("jobschedule", keep_alive=True), job_manager_task=manager())
    create_schedule(client, "kept-pool", spec)
    (job,) = completed_jobs(helpers, client, "kept-pool", 1)
    pool_id = job.execution_info.pool_id
    assert re.fullmatch(GUID, pool_id)
    client.begin_terminate_job_schedule("kept-pool", polling_interval=0).result()
    helpers.wait_until(lambda: client.get_job_schedule("kept-pool").state == "completed", what="schedule completed")
    assert client.get_pool(pool_id).state == "active"
    client.begin_delete_job_schedule("kept-pool", polling_interval=0).result()
    client.begin_delete_pool(pool_id, polling_interval=0).result()


def test_a_job_lifetime_pool_per_job_with_preparation_and_release(client: BatchClient, helpers: Any) -> None:
    log = "$AZ_BATCH_NODE_SHARED_DIR/$AZ_BATCH_JOB_ID.log"
    spec = M.BatchJobSpecification(
        pool_info=auto_pool("job", auto_pool_id_prefix="perjob"),
        job_manager_task=manager(f"/bin/sh -c 'test \"$(cat {log})\" = prep'"),
        job_preparation_task=M.BatchJobPreparationTask(command_line=f"/bin/sh -c 'echo prep >> {log}'"),
        job_release_task=M.BatchJobReleaseTask(command_line=f"/bin/sh -c 'echo release >> {log}'"),
    )
    create_schedule(client, "own-pools", spec)
    jobs = completed_jobs(helpers, client, "own-pools", 2)
    pool_ids = [job.execution_info.pool_id for job in jobs]
    assert len(set(pool_ids)) == 2
    assert all(re.fullmatch(f"perjob_{GUID}", pool_id) for pool_id in pool_ids)
    for job in jobs:
        # The preparation task ran before the job manager on its node, the release task when the job ended.
        assert client.get_task(job.id, "manager").execution_info.exit_code == 0
        (status,) = client.list_job_preparation_and_release_task_status(job.id)
        assert status.job_preparation_task_execution_info.result == "success"
        assert status.job_release_task_execution_info.exit_code == 0
    for pool_id in pool_ids:  # each pool goes with its job
        helpers.wait_until(lambda pool_id=pool_id: pool_gone(client, pool_id), what=f"{pool_id} deleted")
    client.begin_delete_job_schedule("own-pools", polling_interval=0).result()


def test_a_job_whose_auto_pool_cannot_be_created_completes_with_a_scheduling_error(
    client: BatchClient, helpers: Any
) -> None:
    pool_info = auto_pool("job")
    pool_info.auto_pool_specification.pool.vm_size = "standard_no_such_size"
    create_schedule(client, "bad-pool", M.BatchJobSpecification(pool_info=pool_info))
    jobs = completed_jobs(helpers, client, "bad-pool", 2)  # a failed job does not hold up the next one
    for job in jobs:
        error = job.execution_info.scheduling_error
        assert (error.category, error.code) == ("usererror", "InvalidPropertyValue")
        assert {item.name: item.value for item in error.details}["PropertyValue"] == "standard_no_such_size"
        assert job.execution_info.pool_id is None
    client.begin_delete_job_schedule("bad-pool", polling_interval=0).result()
