"""Node operations through the unmodified azure-batch 15 SDK: reboot, reimage, deallocate/start, scheduling."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.batch.models import _models as sdk_models  # reboot/reimage/deallocate options are not re-exported
from azure.core.exceptions import HttpResponseError

from batch_emulator.server import ThreadedEmulator

BOOT_LOG = "shared/boots.txt"
# An empty options body makes the SDK fail before sending (a known v15 bug), so the option is always given.
REQUEUE_REBOOT = sdk_models.BatchNodeRebootOptions(node_reboot_kind="requeue")
COUNT_BOOTS = '/bin/sh -c "echo boot >> $AZ_BATCH_NODE_SHARED_DIR/boots.txt"'


def _pool_with_boot_log(client: BatchClient, helpers: Any, pool_id: str, slots: int = 1) -> str:
    """A one-node pool whose start task appends a line to shared/boots.txt; returns the node id."""
    start_task = batch_models.BatchStartTask(command_line=COUNT_BOOTS, wait_for_success=True)
    return str(helpers.ready_pool(client, pool_id, nodes=1, slots=slots, start_task=start_task)[0].id)


def _boots(client: BatchClient, pool_id: str, node_id: str) -> int:
    return b"".join(client.download_node_file(pool_id, node_id, BOOT_LOG)).count(b"boot")


def _running_task(client: BatchClient, helpers: Any, pool_id: str, job_id: str, task_id: str) -> Any:
    client.create_job(
        batch_models.BatchJobCreateOptions(id=job_id, pool_info=batch_models.BatchPoolInfo(pool_id=pool_id))
    )
    client.create_task(job_id, batch_models.BatchTaskCreateOptions(id=task_id, command_line="/bin/sleep 30"))
    return helpers.wait_until(lambda: client.get_task(job_id, task_id).state == "running", what=f"{task_id} running")


def _state(client: BatchClient, pool_id: str, node_id: str) -> Any:
    return client.get_node(pool_id, node_id).state


def test_reboot_requeues_the_running_task_keeps_files_and_runs_the_start_task_again(
    emulator: ThreadedEmulator, helpers: Any
) -> None:
    client: BatchClient = helpers.make_client(emulator)
    node_id = _pool_with_boot_log(client, helpers, "reboot-pool")
    _running_task(client, helpers, "reboot-pool", "reboot-job", "sleeper")
    options = sdk_models.BatchNodeRebootOptions(node_reboot_kind="requeue")
    client.begin_reboot_node("reboot-pool", node_id, options, polling_interval=0).result()
    assert _state(client, "reboot-pool", node_id) != "rebooting"
    task = client.get_task("reboot-job", "sleeper")
    assert task.execution_info.requeue_count == 1
    helpers.wait_until(lambda: _boots(client, "reboot-pool", node_id) == 2, what="start task run again")
    node = client.get_node("reboot-pool", node_id)
    assert node.last_boot_time > node.allocation_time


def test_reimage_ends_the_running_task_and_wipes_the_node(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    node_id = _pool_with_boot_log(client, helpers, "reimage-pool")
    _running_task(client, helpers, "reimage-pool", "reimage-job", "sleeper")
    options = sdk_models.BatchNodeReimageOptions(node_reimage_option="terminate")
    client.begin_reimage_node("reimage-pool", node_id, options, polling_interval=0).result()
    task = helpers.wait_until(
        lambda: (found := client.get_task("reimage-job", "sleeper")).state == "completed" and found,
        what="terminated task",
    )
    assert task.execution_info.failure_info.code == "TaskEnded"
    helpers.wait_for_idle_nodes(client, "reimage-pool", 1)
    # The old boot line went with the wiped disk; the start task wrote the only one there is.
    assert _boots(client, "reimage-pool", node_id) == 1
    names = {item.name for item in client.list_node_files("reimage-pool", node_id, recursive=True)}
    assert not any(name.startswith("workitems/reimage-job") for name in names)


def test_reboot_with_taskcompletion_waits_and_refuses_a_second_reboot(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    node_id = _pool_with_boot_log(client, helpers, "patient-pool")
    _running_task(client, helpers, "patient-pool", "patient-job", "sleeper")
    options = sdk_models.BatchNodeRebootOptions(node_reboot_kind="taskcompletion")
    poller = client.begin_reboot_node("patient-pool", node_id, options, polling_interval=0)
    assert _state(client, "patient-pool", node_id) == "rebooting"
    assert client.get_task("patient-job", "sleeper").state == "running"
    with pytest.raises(HttpResponseError) as again:
        client.begin_reboot_node("patient-pool", node_id, options, polling_interval=0)
    assert (again.value.status_code, again.value.error.code) == (409, "NodeBeingRebooted")
    client.terminate_task("patient-job", "sleeper")
    poller.result()
    helpers.wait_until(lambda: _boots(client, "patient-pool", node_id) == 2, what="reboot after the task")


def test_deallocate_then_start(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    node_id = _pool_with_boot_log(client, helpers, "sleepy-pool")
    options = sdk_models.BatchNodeDeallocateOptions(node_deallocate_option="requeue")
    client.begin_deallocate_node("sleepy-pool", node_id, options, polling_interval=0).result()
    helpers.wait_until(lambda: _state(client, "sleepy-pool", node_id) == "deallocated", what="deallocated")
    counts = client.list_pool_node_counts()
    dedicated = next(item.dedicated for item in counts if item.pool_id == "sleepy-pool")
    assert dedicated.deallocated == 1
    with pytest.raises(HttpResponseError) as reboot:
        client.begin_reboot_node("sleepy-pool", node_id, REQUEUE_REBOOT, polling_interval=0)
    assert (reboot.value.status_code, reboot.value.error.code) == (409, "OperationInvalidForCurrentState")
    client.begin_start_node("sleepy-pool", node_id, polling_interval=0).result()
    helpers.wait_for_idle_nodes(client, "sleepy-pool", 1)
    assert _boots(client, "sleepy-pool", node_id) == 2  # the disk was kept and the start task ran again
    with pytest.raises(HttpResponseError) as start:
        client.begin_start_node("sleepy-pool", node_id, polling_interval=0)
    assert (start.value.status_code, start.value.error.code) == (409, "OperationInvalidForCurrentState")


def test_disabled_scheduling_keeps_new_tasks_off_the_node(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    node_id = _pool_with_boot_log(client, helpers, "quiet-pool", slots=2)
    _running_task(client, helpers, "quiet-pool", "quiet-job", "sleeper")
    options = batch_models.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue")
    client.disable_node_scheduling("quiet-pool", node_id, options)
    assert client.get_node("quiet-pool", node_id).scheduling_state == "disabled"
    requeued = client.get_task("quiet-job", "sleeper")
    assert (requeued.state, requeued.execution_info.requeue_count) == ("active", 1)
    client.create_task("quiet-job", batch_models.BatchTaskCreateOptions(id="quick", command_line="/bin/true"))
    with pytest.raises(HttpResponseError) as twice:
        client.disable_node_scheduling("quiet-pool", node_id, options)
    assert (twice.value.status_code, twice.value.error.code) == (409, "NodeAlreadyInTargetSchedulingState")
    assert client.get_task("quiet-job", "quick").state == "active"
    client.enable_node_scheduling("quiet-pool", node_id)
    helpers.wait_until(lambda: client.get_task("quiet-job", "quick").state == "completed", what="quick task ran")
    assert client.get_node("quiet-pool", node_id).scheduling_state == "enabled"


def test_unknown_option_and_unknown_node(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    node_id = _pool_with_boot_log(client, helpers, "strict-pool")
    with pytest.raises(HttpResponseError) as option:
        client.begin_reboot_node(
            "strict-pool", node_id, sdk_models.BatchNodeRebootOptions(node_reboot_kind="later"), polling_interval=0
        )
    assert (option.value.status_code, option.value.error.code) == (400, "InvalidPropertyValue")
    with pytest.raises(HttpResponseError) as missing:
        client.disable_node_scheduling(
            "strict-pool",
            "tvmps_nope_d",
            batch_models.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue"),
        )
    assert (missing.value.status_code, missing.value.error.code) == (404, "NodeNotFound")
