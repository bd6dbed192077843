"""The calls Airflow's AzureBatchOperator makes through AzureBatchHook in apache-airflow-providers-microsoft-azure
up to 14.1 (``azure-batch>=8,<15``, so 14.2), in its order (run in .venv-v14).

Usage: ``python airflow_calls.py URL ACCOUNT KEY``; prints one JSON object of what it saw. The connection is the
hook's: ``BatchServiceClient(SharedKeyCredentials(login, password), batch_url=extra["account_url"])``. The hook
waits 10 s and 15 s between polls; here 0.1 s.
"""

import json
import sys
import time

import azure.batch.models as bm
from azure.batch import BatchServiceClient, batch_auth

POOL, JOB, TASK = "airflow-pool", "airflow-job", "airflow-task"


def swallow(code, call, *args, **kwargs):
    """The hook's ``create_pool``/``create_job``/``add_single_task_to_job``: an existing entity is no error."""
    try:
        call(*args, **kwargs)
        return "created"
    except bm.BatchErrorException as err:
        if not err.error or err.error.code != code:
            raise
        return code


def latest_verified_image(client, publisher, offer, sku_starts_with):
    """``_get_latest_verified_image_vm_and_sku``."""
    options = bm.AccountListSupportedImagesOptions(filter="verificationType eq 'verified'")
    images = client.account.list_supported_images(account_list_supported_images_options=options)
    skus = [
        (image.node_agent_sku_id, image.image_reference)
        for image in images
        if image.image_reference.publisher.lower() == publisher
        and image.image_reference.offer.lower() == offer
        and image.image_reference.sku.startswith(sku_starts_with)
    ]
    return skus[0]


def wait_for_all_node_state(client, pool_id, states):
    while True:
        pool = client.pool.get(pool_id)
        if pool.resize_errors is not None:
            raise RuntimeError(f"resize error encountered for pool {pool.id}")
        nodes = list(client.compute_node.list(pool.id))
        if len(nodes) >= pool.target_dedicated_nodes and all(node.state in states for node in nodes):
            return nodes
        time.sleep(0.1)


def wait_for_job_tasks_to_complete(client, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = list(client.task.list(job_id))
        if all(task.state == bm.TaskState.completed for task in tasks):
            return [task.id for task in tasks if task.execution_info.result == bm.TaskExecutionResult.failure]
        time.sleep(0.1)
    raise TimeoutError("Timed out waiting for tasks to complete")


def main(url, account, key):
    client = BatchServiceClient(batch_auth.SharedKeyCredentials(account, key), batch_url=url)
    seen = {"connection": next(client.job.list(), None)}  # test_connection
    agent_sku, image = latest_verified_image(client, "canonical", "0001-com-ubuntu-server-jammy", "22")
    seen["image"] = [agent_sku, image.publisher, image.offer, image.sku]
    pool = bm.PoolAddParameter(
        id=POOL,
        vm_size="Standard_D2s_v3",
        display_name="airflow",
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=image, node_agent_sku_id=agent_sku
        ),
        target_dedicated_nodes=1,
        target_low_priority_nodes=None,
        enable_auto_scale=None,
        auto_scale_formula=None,
        start_task=bm.StartTask(command_line="/bin/sh -c 'echo start'", wait_for_success=True),
    )
    seen["pool"] = [swallow("PoolExists", client.pool.add, pool) for _ in range(2)]  # a rerun finds it
    nodes = wait_for_all_node_state(
        client, POOL, {bm.ComputeNodeState.start_task_failed, bm.ComputeNodeState.unusable, bm.ComputeNodeState.idle}
    )
    seen["nodes"] = [str(node.state) for node in nodes]
    job = bm.JobAddParameter(
        id=JOB,
        pool_info=bm.PoolInformation(pool_id=POOL),
        display_name="airflow job",
        job_manager_task=None,
        job_preparation_task=None,
        job_release_task=None,
    )
    seen["job"] = [swallow("JobExists", client.job.add, job) for _ in range(2)]
    task = bm.TaskAddParameter(
        id=TASK,
        command_line="/bin/sh -c 'echo from airflow; exit 4'",
        display_name="airflow task",
        container_settings=None,
        resource_files=None,
        output_files=None,
        user_identity=None,
    )
    seen["task"] = [swallow("TaskExists", client.task.add, job_id=JOB, task=task) for _ in range(2)]
    seen["failed"] = wait_for_job_tasks_to_complete(client, JOB)
    client.job.terminate(job_id=JOB, terminate_reason="Job killed by user")  # on_kill
    terminated = client.job.get(JOB)
    seen["terminated"] = [str(terminated.state), terminated.execution_info.terminate_reason]
    client.job.delete(JOB)  # clean_up
    client.pool.delete(POOL)
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:4])
