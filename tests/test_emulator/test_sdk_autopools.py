"""Auto pools (poolInfo.autoPoolSpecification) through the unmodified azure-batch 15 SDK."""

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
