"""A whole workflow with a track-1 client (azure-batch 11 to 14, ``BatchServiceClient`` on msrest).

Usage: ``python track1_workflow.py URL ACCOUNT KEY STORAGE_JSON``; prints one JSON object of what it saw.
``STORAGE_JSON`` names SAS URLs in Azurite: ``script`` (a blob the start task downloads), ``inputs`` (blob
URLs, one per task), ``container`` (a read/list container SAS whose ``shared/`` blobs every task downloads)
and ``output`` (a write container SAS the tasks upload to). Written as the Batch Python quickstart and the
Azure Batch samples write it: SharedKey (``ocp-date``), odata ``$select``/``$filter``, ``client-request-id``.
"""

import json
import sys
import uuid

import azure.batch
import azure.batch.models as bm
from azure.batch import BatchServiceClient
from azure.batch.batch_auth import SharedKeyCredentials
from script_polling import wait

VERSION = azure.batch.__version__
SUFFIX = VERSION.replace(".", "-")
POOL, JOB = f"track1-pool-{SUFFIX}", f"track1-job-{SUFFIX}"
TASKS = 3


def admin():
    return bm.UserIdentity(
        auto_user=bm.AutoUserSpecification(scope=bm.AutoUserScope.pool, elevation_level=bm.ElevationLevel.admin)
    )


def create_pool(client, storage):
    image = bm.ImageReference(
        publisher="Canonical", offer="0001-com-ubuntu-server-focal", sku="20_04-lts", version="latest"
    )
    client.pool.add(
        bm.PoolAddParameter(
            id=POOL,
            vm_size="STANDARD_DS1_V2",
            virtual_machine_configuration=bm.VirtualMachineConfiguration(
                image_reference=image, node_agent_sku_id="batch.node.ubuntu 20.04"
            ),
            target_dedicated_nodes=1,
            task_slots_per_node=2,
            start_task=bm.StartTask(
                command_line="/bin/sh -c 'sh setup.sh | tee $AZ_BATCH_NODE_SHARED_DIR/ready'",
                resource_files=[bm.ResourceFile(http_url=storage["script"], file_path="setup.sh")],
                environment_settings=[bm.EnvironmentSetting(name="GREETING", value="ready")],
                wait_for_success=True,
                user_identity=admin(),
            ),
        )
    )


def task(index, storage):
    return bm.TaskAddParameter(
        id=f"task{index}",
        command_line=(
            "/bin/sh -c 'cat $AZ_BATCH_NODE_SHARED_DIR/ready input.txt shared/common.txt"
            f" && cp input.txt out-{index}.txt'"
        ),
        resource_files=[
            bm.ResourceFile(http_url=storage["inputs"][index], file_path="input.txt"),
            bm.ResourceFile(storage_container_url=storage["container"], blob_prefix="shared/"),
        ],
        output_files=[
            bm.OutputFile(
                file_pattern="out-*.txt",
                destination=bm.OutputFileDestination(
                    container=bm.OutputFileBlobContainerDestination(
                        container_url=storage["output"], path=f"results-{VERSION}"
                    )
                ),
                upload_options=bm.OutputFileUploadOptions(upload_condition=bm.OutputFileUploadCondition.task_success),
            )
        ],
        constraints=bm.TaskConstraints(max_task_retry_count=1),
    )


def echoed_request_id(client):
    """Send a ``client-request-id`` and ask for it back, as a caller tracing its requests does."""
    request_id = str(uuid.uuid4())
    options = bm.JobGetOptions(client_request_id=request_id, return_client_request_id=True, select="id,state")
    raw = client.job.get(JOB, job_get_options=options, raw=True)
    return raw.response.headers.get("client-request-id") == request_id and raw.output.state == bm.JobState.active


def main(url, account, key, storage_json):
    storage = json.loads(storage_json)
    client = BatchServiceClient(SharedKeyCredentials(account, key), batch_url=url)
    create_pool(client, storage)
    client.job.add(
        bm.JobAddParameter(
            id=JOB,
            pool_info=bm.PoolInformation(pool_id=POOL),
            constraints=bm.JobConstraints(max_task_retry_count=0),
        )
    )
    client.task.add(JOB, task(0, storage))
    added = client.task.add_collection(JOB, [task(index, storage) for index in range(1, TASKS)])

    def all_completed():
        options = bm.TaskListOptions(filter="state eq 'completed'", select="id,state,executionInfo")
        listed = list(client.task.list(JOB, task_list_options=options))
        return listed if len(listed) == TASKS else None

    completed = wait(all_completed, "the tasks to complete")
    stdout = {task.id: b"".join(client.file.get_from_task(JOB, task.id, "stdout.txt")).decode() for task in completed}
    paged = [task.id for task in client.task.list(JOB, task_list_options=bm.TaskListOptions(max_results=2))]
    files = sorted(
        item.name for item in client.file.list_from_task(JOB, "task0", recursive=True) if not item.is_directory
    )
    properties = client.file.get_properties_from_task(JOB, "task0", "stdout.txt", raw=True)
    idle = bm.ComputeNodeListOptions(filter="state eq 'idle'", select="id,state,startTaskInfo")
    nodes = list(client.compute_node.list(POOL, compute_node_list_options=idle))
    start_stdout = b"".join(client.file.get_from_compute_node(POOL, nodes[0].id, "startup/stdout.txt")).decode()
    pool = client.pool.get(POOL, pool_get_options=bm.PoolGetOptions(select="id,vmSize,taskSlotsPerNode,state"))
    counts = client.job.get_task_counts(JOB)
    request_id = echoed_request_id(client)
    try:
        client.task.get(JOB, "no-such-task")
        missing = None
    except bm.BatchErrorException as error:
        missing = error.error.code
    client.task.terminate(JOB, "task0")
    client.job.delete(JOB)
    client.pool.delete(POOL)
    wait(lambda: not client.pool.exists(POOL), "the pool to be deleted")
    print(
        json.dumps(
            {
                "version": VERSION,
                "apiVersion": client.api_version,
                "added": sorted(str(result.status) for result in added.value),
                "exitCodes": sorted(task.execution_info.exit_code for task in completed),
                "stdout": stdout,
                "paged": sorted(paged),
                "files": files,
                "stdoutLength": int(properties.response.headers["Content-Length"]),
                "startTask": [str(node.start_task_info.result) for node in nodes],
                "startStdout": start_stdout,
                "pool": {"vmSize": pool.vm_size, "slots": pool.task_slots_per_node, "state": str(pool.state)},
                "selectedOnly": pool.start_task is None and pool.virtual_machine_configuration is None,
                "succeeded": counts.task_counts.succeeded,
                "requestIdEchoed": request_id,
                "missingTask": missing,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
