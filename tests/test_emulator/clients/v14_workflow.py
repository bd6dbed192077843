"""A whole workflow with the legacy client azure-batch 14.2 (``BatchServiceClient``), run in ``.venv-v14``.

Usage: ``.venv-v14/bin/python v14_workflow.py URL ACCOUNT KEY``; prints one JSON object of what it saw.
Written as Microsoft's Batch Python quickstart writes it (its pool size and Ubuntu 20.04 image included).
"""

import json
import sys

import azure.batch.models as batchmodels
from azure.batch import BatchServiceClient
from azure.batch.batch_auth import SharedKeyCredentials
from script_polling import wait

POOL, JOB = "v14-pool", "v14-job"


def main(url, account, key):
    client = BatchServiceClient(SharedKeyCredentials(account, key), batch_url=url)
    image = batchmodels.ImageReference(
        publisher="Canonical", offer="0001-com-ubuntu-server-focal", sku="20_04-lts", version="latest"
    )
    client.pool.add(
        batchmodels.PoolAddParameter(
            id=POOL,
            vm_size="STANDARD_DS1_V2",
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=image, node_agent_sku_id="batch.node.ubuntu 20.04"
            ),
            target_dedicated_nodes=1,
            start_task=batchmodels.StartTask(
                command_line="/bin/sh -c 'echo ready > $AZ_BATCH_NODE_SHARED_DIR/ready'",
                wait_for_success=True,
                user_identity=batchmodels.UserIdentity(
                    auto_user=batchmodels.AutoUserSpecification(
                        scope=batchmodels.AutoUserScope.pool, elevation_level=batchmodels.ElevationLevel.admin
                    )
                ),
            ),
        )
    )
    client.job.add(batchmodels.JobAddParameter(id=JOB, pool_info=batchmodels.PoolInformation(pool_id=POOL)))
    tasks = [
        batchmodels.TaskAddParameter(
            id=f"task{i}", command_line=f"/bin/sh -c 'cat $AZ_BATCH_NODE_SHARED_DIR/ready && echo task {i}'"
        )
        for i in range(5)
    ]
    added = client.task.add_collection(JOB, tasks)

    def all_completed():
        listed = list(client.task.list(JOB))
        return listed if all(task.state == batchmodels.TaskState.completed for task in listed) else None

    completed = wait(all_completed, "the tasks to complete")
    stdout = {task.id: b"".join(client.file.get_from_task(JOB, task.id, "stdout.txt")).decode() for task in completed}
    nodes = list(client.compute_node.list(POOL))
    counts = client.job.get_task_counts(JOB)
    pool = client.pool.get(POOL)
    client.job.delete(JOB)
    client.pool.delete(POOL)
    wait(lambda: not client.pool.exists(POOL), "the pool to be deleted")
    print(
        json.dumps(
            {
                "added": sorted(result.status for result in added.value),
                "exitCodes": sorted(task.execution_info.exit_code for task in completed),
                "stdout": stdout,
                "nodeStates": [str(node.state) for node in nodes],
                "startTask": str(nodes[0].start_task_info.result) if nodes and nodes[0].start_task_info else None,
                "succeeded": counts.task_counts.succeeded,
                "vmSize": pool.vm_size,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
