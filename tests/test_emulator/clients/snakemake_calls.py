"""The calls snakemake-executor-plugin-azure-batch 0.3 makes, in its order, with the SDKs it pins (run in .venv-v14).

Usage: ``python snakemake_calls.py SETTINGS_JSON``; prints one JSON object of what it saw. ``SETTINGS_JSON`` holds
``url`` (the Batch endpoint, https), ``batch_token`` and ``arm_token`` (Entra ID tokens for Batch and Resource
Manager), ``subscription_id``, ``resource_group``, ``account_name``, ``start_task_url`` (a SAS URL of the start
task script) and ``image`` (the container image). The CA bundle comes from ``REQUESTS_CA_BUNDLE``.

What the plugin does (``Executor.init_batch_client``, ``create_batch_pool``, ``create_batch_job``, ``run_job``,
``check_active_jobs``, ``cancel_jobs``, ``cleanup_resources``; ``build.batch_pool_params``, ``build.batch_task``),
with three changes it cannot be given from outside: the tokens come from the test (the plugin asks the Azure CLI,
a managed identity or the environment for them), ``BatchManagementClient`` is given ``base_url`` (the plugin
always talks to ``management.azure.com``) and the account name is given (the plugin takes the first label of the
account URL's host). Task command lines use ``/bin/sh`` as the local busybox image has no bash.
"""

import json
import sys
import time
import uuid

import azure.batch.models as bm
from azure.batch import BatchServiceClient
from azure.core.credentials import AccessToken
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as arm
from msrest.authentication import BasicTokenAuthentication


class Token:
    """An azure-core credential holding one token (the plugin's ChainedTokenCredential, as the wire sees it)."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


def pool_params(pool_id, settings):
    """``build.batch_pool_params`` with the plugin's default settings and a node start task URL."""
    admin = arm.UserIdentity(
        auto_user=arm.AutoUserSpecification(elevation_level=arm.ElevationLevel.ADMIN, scope=arm.AutoUserScope.POOL)
    )
    return arm.Pool(
        identity=None,
        display_name=pool_id,
        vm_size="Standard_D2_v3",
        deployment_configuration=arm.DeploymentConfiguration(
            virtual_machine_configuration=arm.VirtualMachineConfiguration(
                image_reference=arm.ImageReference(
                    publisher="microsoft-azure-batch",
                    offer="ubuntu-server-container",
                    sku="20-04-lts",
                    version="latest",
                ),
                container_configuration=arm.ContainerConfiguration(
                    type="dockerCompatible", container_image_names=[settings["image"]]
                ),
                node_agent_sku_id="batch.node.ubuntu 20.04",
            ),
        ),
        scale_settings=arm.ScaleSettings(fixed_scale=arm.FixedScaleSettings(target_dedicated_nodes=1)),
        start_task=arm.StartTask(
            command_line="bash start_task.sh",
            resource_files=[arm.ResourceFile(file_path="start_task.sh", http_url=settings["start_task_url"])],
            user_identity=admin,
        ),
        network_configuration=None,
        task_slots_per_node=1,
        task_scheduling_policy=arm.TaskSchedulingPolicy(node_fill_type="spread"),
        target_node_communication_mode=arm.NodeCommunicationMode.CLASSIC,
    )


def batch_task(name, image, envvars, command):
    """``build.batch_task``."""
    return bm.TaskAddParameter(
        id=f"{name}-{uuid.uuid4()}",
        command_line=command,
        display_name=name,
        user_identity=bm.UserIdentity(
            auto_user=bm.AutoUserSpecification(elevation_level=bm.ElevationLevel.admin, scope=bm.AutoUserScope.pool)
        ),
        container_settings=bm.TaskContainerSettings(image_name=image, container_run_options="--rm"),
        environment_settings=[bm.EnvironmentSetting(name=key, value=value) for key, value in envvars.items()],
    )


def read(stream):
    return b"".join(stream).decode("utf-8")


def start_task_file(batch, pool_id, node_id, path):
    """A start task file as ``_report_node_errors`` reads it (the plugin writes ``/startup/stderr.txt``)."""
    try:
        return read(batch.file.get_from_compute_node(pool_id, node_id, path))
    except bm.BatchErrorException as error:  # the plugin reads such a file as "" (an error is caught)
        return {"error": error.error.code}


def main(settings):
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S")
    pool_id, job_id = f"snakepool-{stamp}", f"snakejob-{stamp}"
    batch = BatchServiceClient(BasicTokenAuthentication({"access_token": settings["batch_token"]}), settings["url"])
    mgmt = BatchManagementClient(
        credential=Token(settings["arm_token"]), subscription_id=settings["subscription_id"], base_url=settings["url"]
    )
    mgmt.pool.create(
        resource_group_name=settings["resource_group"],
        account_name=settings["account_name"],
        pool_name=pool_id,
        parameters=pool_params(pool_id, settings),
    )
    batch.job.add(
        bm.JobAddParameter(
            id=job_id,
            constraints=bm.JobConstraints(max_task_retry_count=0),
            pool_info=bm.PoolInformation(pool_id=pool_id),
        )
    )
    rules = {
        "rule_a": "/bin/sh -c 'echo \"rule a ran in $SNAKEMAKE_RULE\"'",
        "rule_b": "/bin/sh -c 'echo \"rule b failed\" >&2; exit 2'",
    }
    submitted = {}
    for name, command in rules.items():
        task = batch_task(name, settings["image"], {"SNAKEMAKE_RULE": name}, command)
        batch.task.add(job_id, task)
        submitted[name] = task.id

    seen = {"resizeErrors": [], "tasks": {}}
    deadline = time.monotonic() + 90
    while len(seen["tasks"]) < len(submitted):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out; saw {seen}")
        pool = batch.pool.get(pool_id)  # _report_pool_errors
        seen["resizeErrors"] = [{"code": e.code, "message": e.message} for e in pool.resize_errors or []]
        for node in batch.compute_node.list(pool_id):  # _report_node_errors
            seen["nodeStates"] = sorted({*seen.get("nodeStates", []), str(node.state)})
            if node.start_task_info is not None and node.start_task_info.result is not None:
                seen["startTask"] = str(node.start_task_info.result)
                seen["startStderr"] = start_task_file(batch, pool_id, node.id, "/startup/stderr.txt")
                seen["startStdout"] = start_task_file(batch, pool_id, node.id, "startup/stdout.txt")
        for name, task_id in submitted.items():  # _report_task_status
            task = batch.task.get(job_id=job_id, task_id=task_id)
            if task.state != bm.TaskState.completed:
                continue
            info = task.execution_info
            failure = info.failure_info
            seen["tasks"][name] = {
                "result": str(info.result),
                "stdout": read(batch.file.get_from_task(job_id, task_id, "stdout.txt")),
                "stderr": read(batch.file.get_from_task(job_id, task_id, "stderr.txt")),
                "failure": None
                if failure is None
                else {
                    "category": str(failure.category),
                    "code": failure.code,
                    "message": failure.message,
                    "details": [(item.name, item.value) for item in failure.details or []],
                },
            }
        time.sleep(0.1)  # the plugin's status polling, shortened

    for task in batch.task.list(job_id):  # cancel_jobs
        batch.task.terminate(job_id, task.id)
    batch.job.delete(job_id)  # cleanup_resources
    batch.pool.delete(pool_id)  # the plugin ignores PoolBeingDeleted here (test_a_pool_is_deleted_once)
    seen["poolExists"] = batch.pool.exists(pool_id) and str(batch.pool.get(pool_id).state)
    print(json.dumps(seen))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
