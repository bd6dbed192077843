"""Apache Airflow's AzureBatchOperator and AzureBatchHook make their calls with the azure-batch each provider line pins.

- ``apache-airflow-providers-microsoft-azure`` up to 14.1 pins ``azure-batch>=8,<15`` (so 14.2,
  ``BatchServiceClient``): ``clients/airflow_calls.py`` runs its calls in order from ``.venv-v14`` — the latest
  verified image through ``account.list_supported_images`` with ``$filter``, pool, job and task creation that
  treat ``PoolExists``/``JobExists``/``TaskExists`` as success on a rerun, node and task polling, failed tasks,
  ``job.terminate`` with a reason (``on_kill``), deletion.
- From 15.0 it pins ``azure-batch>=15`` (``BatchClient``), the main suite's client: the hook's calls in order,
  with ``polling_interval=0`` on the long-running operations (Airflow leaves the SDK's 5 s between polls).
  ``on_kill``'s ``begin_terminate_job(job_id)`` fails inside azure-batch 15.1.0 (no options: no content type),
  whatever the service; the test shows it and terminates with options.

Airflow itself is not installed: the hook's calls are made as its source makes them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError

from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from tests.test_emulator.clients.environments import V14, client_python

pytestmark = pytest.mark.integration
CALLS = Path(__file__).parent / "clients" / "airflow_calls.py"


@pytest.fixture(scope="module")
def service() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as running:
        yield running


def test_airflow_provider_up_to_14_with_azure_batch_14(service: ThreadedEmulator) -> None:
    run = subprocess.run(
        [str(client_python(V14)), str(CALLS), service.url, service.account_name, service.account_key],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert seen["connection"] is None  # test_connection: no jobs yet, and no error
    assert seen["image"] == ["batch.node.ubuntu 22.04", "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts"]
    assert seen["pool"] == ["created", "PoolExists"]
    assert seen["nodes"] == ["ComputeNodeState.idle"]
    assert seen["job"] == ["created", "JobExists"]
    assert seen["task"] == ["created", "TaskExists"]
    assert seen["failed"] == ["airflow-task"]
    assert seen["terminated"] == ["JobState.completed", "Job killed by user"]


def _create(call: object, *args: object) -> str:
    try:
        call(*args)  # type: ignore[operator]
    except ResourceExistsError:
        return "exists"
    return "created"


def test_airflow_provider_15_with_azure_batch_15(service: ThreadedEmulator, helpers: Any) -> None:
    credential = AzureNamedKeyCredential(service.account_name, service.account_key)
    with BatchClient(endpoint=service.url, credential=credential) as client:
        assert next(client.list_jobs(), None) is None  # test_connection
        images = client.list_supported_images(filter="verificationType eq 'verified'")
        sku, image = next(
            (item.node_agent_sku_id, item.image_reference)
            for item in images
            if (item.image_reference.publisher or "").lower() == "canonical"
            and (item.image_reference.offer or "").lower() == "0001-com-ubuntu-server-jammy"
            and (item.image_reference.sku or "").startswith("22")
        )
        pool = batch_models.BatchPoolCreateOptions(
            id="airflow15-pool",
            vm_size="Standard_D2s_v3",
            display_name=None,
            virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
                image_reference=image, node_agent_sku_id=sku
            ),
            target_dedicated_nodes=1,
        )
        assert [_create(client.create_pool, pool) for _ in range(2)] == ["created", "exists"]
        ready_states = {"idle", "starttaskfailed", "unusable"}

        def nodes_ready() -> bool:  # wait_for_all_node_state
            current = client.get_pool("airflow15-pool")
            assert current.resize_errors is None  # the hook raises on any resize error list, even an empty one
            nodes = list(client.list_nodes("airflow15-pool"))
            return len(nodes) >= (current.target_dedicated_nodes or 0) and all(n.state in ready_states for n in nodes)

        helpers.wait_until(nodes_ready, what="the pool's nodes")
        job = batch_models.BatchJobCreateOptions(
            id="airflow15-job", pool_info=batch_models.BatchPoolInfo(pool_id="airflow15-pool"), display_name=None
        )
        assert [_create(client.create_job, job) for _ in range(2)] == ["created", "exists"]
        task = batch_models.BatchTaskCreateOptions(
            id="t", command_line="/bin/sh -c 'echo airflow'", container_settings=None, resource_files=None
        )
        assert [_create(client.create_task, "airflow15-job", task) for _ in range(2)] == ["created", "exists"]

        def all_completed() -> list[batch_models.BatchTask] | None:  # wait_for_job_tasks_to_complete
            listed = list(client.list_tasks("airflow15-job"))
            return listed if all(item.state == batch_models.BatchTaskState.COMPLETED for item in listed) else None

        tasks = helpers.wait_until(all_completed, what="the task")
        assert [item.execution_info.result for item in tasks if item.execution_info] == ["success"]
        # on_kill: azure-batch 15.1.0 cannot send a terminate without options (it fails before sending anything,
        # against Azure too); with options, as the SDK needs them, the job is terminated.
        with pytest.raises(ValueError, match="No value for given attribute"):
            client.begin_terminate_job("airflow15-job", polling_interval=0).result()
        options = batch_models._models.BatchJobTerminateOptions(termination_reason="Job killed by user")  # not exported
        client.begin_terminate_job("airflow15-job", options, polling_interval=0).result()
        terminated = client.get_job("airflow15-job")
        assert terminated.state == "completed"
        assert terminated.execution_info is not None
        assert terminated.execution_info.termination_reason == "Job killed by user"
        client.begin_delete_job("airflow15-job", polling_interval=0).result()  # clean_up
        client.begin_delete_pool("airflow15-pool", polling_interval=0).result()
        assert [item.id for item in client.list_pools()] == []
