"""A container pool made through ARM runs container tasks added on the data plane, as Snakemake's Azure Batch
executor (``snakemake-executor-plugin-azure-batch``) does it: the pool with ``azure-mgmt-batch`` (the
``ubuntu-server-container`` image, a Docker-compatible container configuration that prefetches the task image,
no fixed start task), then a job and a container task with ``azure-batch`` (``--rm``, admin auto-user)."""

from __future__ import annotations

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as arm_models

from batch_emulator.node.containers.busybox import IMAGE_NAME, BusyboxMissingError, ensure_busybox_image
from batch_emulator.node.containers.runtime import RuntimeNotFoundError, detect_runtime
from tests.polling import wait_until

RESOURCE_GROUP = "snakemake-rg"
ACCOUNT = "localbatch"
POOL = "snakepool"


@pytest.fixture(scope="module", autouse=True)
def container_image(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The local busybox test image (skips only without a container runtime or busybox)."""
    try:
        ensure_busybox_image(detect_runtime(None, tmp_path_factory.mktemp("containers-conf")))
    except (RuntimeNotFoundError, BusyboxMissingError) as error:
        pytest.skip(f"the container pool test needs a container runtime and busybox: {error}")


def snakemake_pool(image: str) -> arm_models.Pool:
    """The pool Snakemake's executor builds (``build.batch_pool_params``), with the local test image."""
    admin = arm_models.UserIdentity(
        auto_user=arm_models.AutoUserSpecification(
            elevation_level=arm_models.ElevationLevel.ADMIN, scope=arm_models.AutoUserScope.POOL
        )
    )
    return arm_models.Pool(
        properties=arm_models.PoolProperties(
            display_name=POOL,
            vm_size="Standard_D2s_v3",
            deployment_configuration=arm_models.DeploymentConfiguration(
                virtual_machine_configuration=arm_models.VirtualMachineConfiguration(
                    image_reference=arm_models.ImageReference(
                        publisher="microsoft-azure-batch", offer="ubuntu-server-container", sku="20-04-lts"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 20.04",
                    container_configuration=arm_models.ContainerConfiguration(
                        type=arm_models.ContainerType.DOCKER_COMPATIBLE,
                        container_image_names=[image],
                        container_registries=[
                            arm_models.ContainerRegistry(
                                registry_server="localhost", user_name="robot", password="s3cret"
                            )
                        ],
                    ),
                )
            ),
            scale_settings=arm_models.ScaleSettings(
                fixed_scale=arm_models.FixedScaleSettings(target_dedicated_nodes=1)
            ),
            start_task=arm_models.StartTask(
                command_line="/bin/sh -c 'echo ready > $AZ_BATCH_NODE_SHARED_DIR/ready'",
                user_identity=admin,
                container_settings=arm_models.TaskContainerSettings(
                    image_name=image, working_directory=arm_models.ContainerWorkingDirectory.TASK_WORKING_DIRECTORY
                ),
            ),
            task_slots_per_node=2,
            task_scheduling_policy=arm_models.TaskSchedulingPolicy(node_fill_type=arm_models.ComputeNodeFillType.PACK),
            metadata=[arm_models.MetadataItem(name="workflow", value="snakemake")],
        )
    )


def test_a_snakemake_style_container_pool_made_through_arm_runs_container_tasks(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    created = mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, POOL, snakemake_pool(IMAGE_NAME))
    data_plane.create_job(
        batch_models.BatchJobCreateOptions(id="snakejob", pool_info=batch_models.BatchPoolInfo(pool_id=POOL))
    )
    data_plane.create_task(
        "snakejob",
        batch_models.BatchTaskCreateOptions(
            id="rule-a",
            command_line="/bin/sh -c 'cat $AZ_BATCH_NODE_SHARED_DIR/ready; echo \"rule a in $SNAKE_RULE\"'",
            user_identity=batch_models.UserIdentity(
                auto_user=batch_models.AutoUserSpecification(elevation_level="admin", scope="pool")
            ),
            container_settings=batch_models.BatchTaskContainerSettings(
                image_name=IMAGE_NAME, container_run_options="--rm"
            ),
            environment_settings=[batch_models.EnvironmentSetting(name="SNAKE_RULE", value="a")],
        ),
    )

    task = wait_until(
        lambda: (t := data_plane.get_task("snakejob", "rule-a")).state == "completed" and t,
        timeout=60.0,
        what="the container task",
    )
    stdout = b"".join(data_plane.download_task_file("snakejob", "rule-a", "stdout.txt")).decode()

    assert task.execution_info.exit_code == 0, task.execution_info
    assert stdout == "ready\nrule a in a\n"
    vm = created.properties.deployment_configuration.virtual_machine_configuration  # type: ignore[union-attr]
    assert vm.container_configuration.type == "DockerCompatible"  # type: ignore[union-attr]
    assert vm.container_configuration.container_image_names == [IMAGE_NAME]  # type: ignore[union-attr]
    seen = data_plane.get_pool(POOL)
    assert seen.virtual_machine_configuration.container_configuration.type == "dockerCompatible"
    assert seen.start_task.container_settings.working_directory == "taskWorkingDirectory"  # type: ignore[union-attr]
    assert (seen.task_slots_per_node, seen.task_scheduling_policy.node_fill_type) == (2, "Pack")  # type: ignore[union-attr]
    arm_view = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, POOL).properties
    assert arm_view.start_task.container_settings.working_directory == "TaskWorkingDirectory"  # type: ignore[union-attr]
    assert [(m.name, m.value) for m in arm_view.metadata or []] == [("workflow", "snakemake")]  # type: ignore[union-attr]
    registry = arm_view.deployment_configuration.virtual_machine_configuration.container_configuration  # type: ignore[union-attr]
    assert [(r.user_name, r.password) for r in registry.container_registries] == [("robot", None)]  # type: ignore[union-attr]
    again = mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, POOL, snakemake_pool(IMAGE_NAME))  # a re-applied template
    assert again.properties.current_dedicated_nodes == 1  # type: ignore[union-attr]
