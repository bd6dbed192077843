"""Auto pools (poolInfo.autoPoolSpecification) through the unmodified azure-batch 15 SDK: of jobs, of the jobs of
job schedules (``poolLifetimeOption`` jobschedule and job, with their job manager, preparation and release tasks),
and moving a disabled job to one."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batch_emulator.server import ThreadedEmulator

M = batch_models
UBUNTU_2204 = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}
GUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"


@pytest.fixture(scope="module")
def client(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    batch: BatchClient = helpers.make_client(emulator)
    return batch


def auto_pool(lifetime: str = "job", **options: Any) -> M.BatchPoolInfo:
    pool = M.BatchPoolSpecification(
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=M.VirtualMachineConfiguration(
            image_reference=M.BatchVmImageReference(**UBUNTU_2204), node_agent_sku_id="batch.node.ubuntu 22.04"
        ),
        target_dedicated_nodes=1,
    )
    spec = M.BatchAutoPoolSpecification(pool_lifetime_option=lifetime, pool=pool, **options)
    return M.BatchPoolInfo(auto_pool_specification=spec)


def pool_gone(client: BatchClient, pool_id: str) -> bool:
    try:
        client.get_pool(pool_id)
    except ResourceNotFoundError:
        return True
    return False


def test_auto_pool_is_created_with_the_job_and_deleted_when_it_completes(client: BatchClient, helpers: Any) -> None:
    client.create_job(
        M.BatchJobCreateOptions(
            id="auto-pool-job", pool_info=auto_pool(auto_pool_id_prefix="render"), all_tasks_complete_mode="noaction"
        )
    )
    job = client.get_job("auto-pool-job")
    assert job.execution_info is not None
    pool_id = job.execution_info.pool_id
    assert pool_id is not None
    assert re.fullmatch(f"render_{GUID}", pool_id)
    shown = job.pool_info.auto_pool_specification
    assert shown.keep_alive is False
    assert (shown.pool.task_slots_per_node, shown.pool.target_dedicated_nodes, shown.pool.resize_timeout) == (
        1,
        1,
        timedelta(minutes=15),
    )
    client.create_task("auto-pool-job", M.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    helpers.wait_for_tasks(client, "auto-pool-job", 1)
    assert client.get_task("auto-pool-job", "t").node_info.pool_id == pool_id
    client.update_job("auto-pool-job", M.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    helpers.wait_until(lambda: client.get_job("auto-pool-job").state == "completed", what="job completed")
    helpers.wait_until(lambda: pool_gone(client, pool_id), what="auto pool deleted")


def test_keep_alive_keeps_the_pool_after_the_job_is_deleted(client: BatchClient, helpers: Any) -> None:
    client.create_job(M.BatchJobCreateOptions(id="keep-job", pool_info=auto_pool(keep_alive=True)))
    pool_id = client.get_job("keep-job").execution_info.pool_id
    assert re.fullmatch(GUID, pool_id)
    client.begin_delete_job("keep-job", polling_interval=0).result()
    assert client.get_pool(pool_id).state == "active"
    client.begin_delete_pool(pool_id, polling_interval=0).result()


def test_deleting_the_job_deletes_its_auto_pool(client: BatchClient, helpers: Any) -> None:
    client.create_job(M.BatchJobCreateOptions(id="del-auto-job", pool_info=auto_pool()))
    pool_id = client.get_job("del-auto-job").execution_info.pool_id
    client.begin_delete_job("del-auto-job", polling_interval=0).result()
    helpers.wait_until(lambda: pool_gone(client, pool_id), what="auto pool deleted")


def test_job_schedule_lifetime_is_refused_on_a_job(client: BatchClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        client.create_job(M.BatchJobCreateOptions(id="bad-auto-job", pool_info=auto_pool("jobschedule")))
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidPropertyValue"


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as caught:
        call()
    assert caught.value.error is not None
    return caught.value.status_code, caught.value.error.code


def disable(client: BatchClient, job_id: str, helpers: Any) -> None:
    client.begin_disable_job(job_id, M.BatchJobDisableOptions(disable_tasks="requeue"), polling_interval=0).result()
    helpers.wait_until(lambda: client.get_job(job_id).state == "disabled", what=f"{job_id} disabled")


def test_a_disabled_job_moves_to_an_auto_pool_of_which_only_keep_alive_changes_after(
    client: BatchClient, helpers: Any
) -> None:
    client.create_job(M.BatchJobCreateOptions(id="moving-job", pool_info=M.BatchPoolInfo(pool_id="no-such-pool")))
    client.create_task("moving-job", M.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    move = M.BatchJobUpdateOptions(pool_info=auto_pool(auto_pool_id_prefix="moved"))
    assert error_of(lambda: client.update_job("moving-job", move)) == (409, "OperationInvalidForCurrentState")

    disable(client, "moving-job", helpers)
    client.update_job("moving-job", move)
    pool_id = client.get_job("moving-job").execution_info.pool_id
    assert re.fullmatch(f"moved_{GUID}", pool_id)
    client.begin_enable_job("moving-job", polling_interval=0).result()
    helpers.wait_for_tasks(client, "moving-job", 1)
    assert client.get_task("moving-job", "t").node_info.pool_id == pool_id

    disable(client, "moving-job", helpers)
    bigger = auto_pool(auto_pool_id_prefix="moved")
    bigger.auto_pool_specification.pool.target_dedicated_nodes = 2
    assert error_of(lambda: client.update_job("moving-job", M.BatchJobUpdateOptions(pool_info=bigger))) == (
        400,
        "InvalidPropertyValue",
    )
    kept = M.BatchJobUpdateOptions(pool_info=auto_pool(auto_pool_id_prefix="moved", keep_alive=True))
    client.update_job("moving-job", kept)
    assert client.get_job("moving-job").pool_info.auto_pool_specification.keep_alive is True
    # Leaving the auto pool releases it: kept alive here, so it stays.
    client.update_job("moving-job", M.BatchJobUpdateOptions(pool_info=M.BatchPoolInfo(pool_id="no-such-pool")))
    assert client.get_job("moving-job").execution_info.pool_id == "no-such-pool"
    assert client.get_pool(pool_id).state == "active"
    client.begin_delete_job("moving-job", polling_interval=0).result()
    client.begin_delete_pool(pool_id, polling_interval=0).result()


# --- the jobs of job schedules (the service runs 600 times faster: a 1-minute recurrence lasts 0.1 s) ----------
@pytest.fixture(scope="module")
def scheduled(scaled_emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    batch: BatchClient = helpers.make_client(scaled_emulator)
    return batch


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


def test_a_jobschedule_auto_pool_serves_every_job_and_goes_with_the_schedule(
    scheduled: BatchClient, helpers: Any
) -> None:
    spec = M.BatchJobSpecification(
        pool_info=auto_pool("jobschedule", auto_pool_id_prefix="nightly"), job_manager_task=manager()
    )
    create_schedule(scheduled, "shared-pool", spec)
    jobs = completed_jobs(helpers, scheduled, "shared-pool", 2)  # each ends when its job manager completes
    pool_ids = {job.execution_info.pool_id for job in jobs}
    assert len(pool_ids) == 1
    (pool_id,) = pool_ids
    assert re.fullmatch(f"nightly_{GUID}", pool_id)
    for job in jobs:
        assert job.execution_info.termination_reason == "JMComplete"
        task = scheduled.get_task(job.id, "manager")
        assert (task.execution_info.exit_code, task.node_info.pool_id) == (0, pool_id)
        assert b"".join(scheduled.download_task_file(job.id, "manager", "stdout.txt")) == b"managed\n"
    assert scheduled.get_pool(pool_id).state == "active"  # the schedule still runs
    shown = scheduled.get_job_schedule("shared-pool").job_specification.pool_info.auto_pool_specification
    assert (shown.pool_lifetime_option, shown.auto_pool_id_prefix) == ("jobschedule", "nightly")
    scheduled.begin_delete_job_schedule("shared-pool", polling_interval=0).result()
    helpers.wait_until(lambda: pool_gone(scheduled, pool_id), what="the schedule's pool deleted")


def test_keep_alive_keeps_the_schedules_pool(scheduled: BatchClient, helpers: Any) -> None:
    spec = M.BatchJobSpecification(pool_info=auto_pool("jobschedule", keep_alive=True), job_manager_task=manager())
    create_schedule(scheduled, "kept-pool", spec)
    (job,) = completed_jobs(helpers, scheduled, "kept-pool", 1)
    pool_id = job.execution_info.pool_id
    assert re.fullmatch(GUID, pool_id)
    scheduled.begin_terminate_job_schedule("kept-pool", polling_interval=0).result()
    helpers.wait_until(lambda: scheduled.get_job_schedule("kept-pool").state == "completed", what="schedule completed")
    assert scheduled.get_pool(pool_id).state == "active"
    scheduled.begin_delete_job_schedule("kept-pool", polling_interval=0).result()
    scheduled.begin_delete_pool(pool_id, polling_interval=0).result()


def test_a_job_lifetime_pool_per_job_with_preparation_and_release(scheduled: BatchClient, helpers: Any) -> None:
    log = "$AZ_BATCH_NODE_SHARED_DIR/$AZ_BATCH_JOB_ID.log"
    spec = M.BatchJobSpecification(
        pool_info=auto_pool("job", auto_pool_id_prefix="perjob"),
        job_manager_task=manager(f"/bin/sh -c 'test \"$(cat {log})\" = prep'"),
        job_preparation_task=M.BatchJobPreparationTask(command_line=f"/bin/sh -c 'echo prep >> {log}'"),
        job_release_task=M.BatchJobReleaseTask(command_line=f"/bin/sh -c 'echo release >> {log}'"),
    )
    create_schedule(scheduled, "own-pools", spec)
    jobs = completed_jobs(helpers, scheduled, "own-pools", 2)
    pool_ids = [job.execution_info.pool_id for job in jobs]
    assert len(set(pool_ids)) == 2
    assert all(re.fullmatch(f"perjob_{GUID}", pool_id) for pool_id in pool_ids)
    for job in jobs:
        # The preparation task ran before the job manager on its node, the release task when the job ended.
        assert scheduled.get_task(job.id, "manager").execution_info.exit_code == 0
        (status,) = scheduled.list_job_preparation_and_release_task_status(job.id)
        assert status.job_preparation_task_execution_info.result == "success"
        assert status.job_release_task_execution_info.exit_code == 0
    for pool_id in pool_ids:  # each pool goes with its job
        helpers.wait_until(lambda pool_id=pool_id: pool_gone(scheduled, pool_id), what=f"{pool_id} deleted")
    scheduled.begin_delete_job_schedule("own-pools", polling_interval=0).result()


def test_a_job_whose_auto_pool_cannot_be_created_completes_with_a_scheduling_error(
    scheduled: BatchClient, helpers: Any
) -> None:
    pool_info = auto_pool("job")
    pool_info.auto_pool_specification.pool.vm_size = "standard_no_such_size"
    create_schedule(scheduled, "bad-pool", M.BatchJobSpecification(pool_info=pool_info))
    jobs = completed_jobs(helpers, scheduled, "bad-pool", 2)  # a failed job does not hold up the next one
    for job in jobs:
        error = job.execution_info.scheduling_error
        assert (error.category, error.code) == ("usererror", "InvalidPropertyValue")
        assert {item.name: item.value for item in error.details}["PropertyValue"] == "standard_no_such_size"
        assert job.execution_info.pool_id is None
    scheduled.begin_delete_job_schedule("bad-pool", polling_interval=0).result()
