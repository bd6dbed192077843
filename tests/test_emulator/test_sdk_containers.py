"""Container pools and container tasks through azure-batch 15, run for real by podman (or docker).

The image is built locally from the static busybox (no registry): once per machine, found again after.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from batch_emulator.node.containers.busybox import IMAGE_NAME, BusyboxMissingError, ensure_busybox_image
from batch_emulator.node.containers.runtime import ContainerRuntime, RuntimeNotFoundError, detect_runtime
from batch_emulator.server import EmulatorConfig, ThreadedEmulator

POOL = "containers-pool"
PLAIN_POOL = "plain-pool"
MISSING_IMAGE = "localhost/batchpipe-test/missing:1"  # pulling it only ever asks 127.0.0.1
CONTAINER_IMAGE = batch_models.BatchVmImageReference(
    publisher="microsoft-azure-batch", offer="ubuntu-server-container", sku="20-04-lts", version="latest"
)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> ContainerRuntime:
    """The machine's container runtime, with the test image present (skips only without a runtime)."""
    try:
        found = detect_runtime(None, tmp_path_factory.mktemp("containers-conf"))
    except RuntimeNotFoundError as error:
        pytest.skip(f"container tests need a container runtime: {error}")
    try:
        ensure_busybox_image(found)
    except BusyboxMissingError as error:
        pytest.skip(str(error))
    return found


def container_pool(pool_id: str, images: list[str], **extra: Any) -> batch_models.BatchPoolCreateOptions:
    registry = batch_models.ContainerRegistryReference(registry_server="localhost", username="robot", password="s3cret")
    return batch_models.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
            image_reference=CONTAINER_IMAGE,
            node_agent_sku_id="batch.node.ubuntu 20.04",
            container_configuration=batch_models.BatchContainerConfiguration(
                type="dockerCompatible", container_image_names=images, container_registries=[registry]
            ),
        ),
        target_dedicated_nodes=1,
        **extra,
    )


def in_container(**options: Any) -> batch_models.BatchTaskContainerSettings:
    return batch_models.BatchTaskContainerSettings(image_name=options.pop("image_name", IMAGE_NAME), **options)


@pytest.fixture(scope="module")
def client(emulator: ThreadedEmulator, helpers: Any, runtime: ContainerRuntime) -> BatchClient:
    """A container pool (its start task runs in a container too) and a plain pool, both idle."""
    batch: BatchClient = helpers.make_client(emulator)
    start_task = batch_models.BatchStartTask(
        command_line="/bin/sh -c 'echo from-start-task > $AZ_BATCH_NODE_SHARED_DIR/started'",
        container_settings=in_container(),
    )
    batch.create_pool(container_pool(POOL, [IMAGE_NAME], task_slots_per_node=8, start_task=start_task))
    batch.create_pool(helpers.pool_options(PLAIN_POOL))
    helpers.wait_for_idle_nodes(batch, POOL, 1)
    return batch


def new_job(client: BatchClient, job_id: str, pool_id: str = POOL) -> None:
    client.create_job(
        batch_models.BatchJobCreateOptions(id=job_id, pool_info=batch_models.BatchPoolInfo(pool_id=pool_id))
    )


def add(client: BatchClient, job_id: str, task_id: str, command: str, **options: Any) -> None:
    client.create_task(job_id, batch_models.BatchTaskCreateOptions(id=task_id, command_line=command, **options))


def finished(helpers: Any, client: BatchClient, job_id: str, task_id: str, timeout: float = 30) -> Any:
    return helpers.wait_until(
        lambda: (found := client.get_task(job_id, task_id)).state == "completed" and found,
        timeout=timeout,
        what=f"{task_id} completed",
    )


def text(client: BatchClient, job_id: str, task_id: str, name: str) -> str:
    return b"".join(client.download_task_file(job_id, task_id, name)).decode()


def containers_of(runtime: ContainerRuntime, emulator: ThreadedEmulator, task: Any) -> list[str]:
    """A task's containers, by their documented names: batch-<task>-<12 hex of node root and job>-<retry>-<attempt>."""
    job_id = task.url.split("/jobs/")[1].split("/")[0]
    root = Path(emulator.data_dir) / "accounts" / emulator.account_name / "pools" / POOL / "nodes"
    key = f"{root / task.node_info.node_id}\0{job_id}"
    prefix = f"batch-{task.id}-{hashlib.sha256(key.encode()).hexdigest()[:12]}-"
    names = runtime.call("ps", "-a", "--format", "{{.Names}}", timeout=60).stdout.split()
    return [name for name in names if name.startswith(prefix)]


def test_container_tasks_get_output_exit_codes_environment_and_batch_directories(
    client: BatchClient, helpers: Any
) -> None:
    new_job(client, "run-job")
    script = (
        'echo "$AZ_BATCH_TASK_ID $GREETING"; pwd; echo "$AZ_BATCH_TASK_WORKING_DIR";'
        ' cat "$AZ_BATCH_NODE_SHARED_DIR/started"; echo oops >&2; exit 3'
    )
    add(
        client,
        "run-job",
        "plain",
        f"/bin/sh -c '{script}'",
        environment_settings=[batch_models.EnvironmentSetting(name="GREETING", value="hello there")],
        container_settings=in_container(),
    )
    isolated = (
        'test ! -e "$AZ_BATCH_NODE_STARTUP_DIR" && cat "$AZ_BATCH_NODE_SHARED_DIR/started"'
        ' && ! touch "$AZ_BATCH_NODE_SHARED_DIR/written" 2>/dev/null && echo ok > "$AZ_BATCH_TASK_WORKING_DIR/out.txt"'
    )
    mounts = [
        batch_models.ContainerHostBatchBindMountEntry(source="Shared", is_read_only=True),
        batch_models.ContainerHostBatchBindMountEntry(source="Task"),
    ]
    add(
        client,
        "run-job",
        "isolated",
        f"/bin/sh -c '{isolated}'",
        container_settings=in_container(container_host_batch_bind_mounts=mounts),
    )
    add(
        client,
        "run-job",
        "image-dir",
        "pwd",
        container_settings=in_container(working_directory="containerImageDefault"),
    )
    add(client, "run-job", "bad-options", "true", container_settings=in_container(container_run_options="--bogus"))

    plain = finished(helpers, client, "run-job", "plain")
    assert plain.execution_info.exit_code == 3
    assert plain.execution_info.failure_info.code == "FailureExitCode"
    name_line, pwd, working_dir, started = text(client, "run-job", "plain", "stdout.txt").splitlines()
    assert name_line == "plain hello there"
    assert pwd == working_dir
    assert working_dir.endswith("/workitems/run-job/job-1/plain/wd")
    assert started == "from-start-task"
    assert text(client, "run-job", "plain", "stderr.txt") == "oops\n"

    isolated_task = finished(helpers, client, "run-job", "isolated")
    assert (isolated_task.execution_info.exit_code, isolated_task.execution_info.result) == (0, "success")
    assert text(client, "run-job", "isolated", "wd/out.txt") == "ok\n"

    assert text(client, "run-job", "image-dir", "stdout.txt") == "/\n"

    bad = finished(helpers, client, "run-job", "bad-options").execution_info
    assert (bad.failure_info.category, bad.failure_info.code) == ("usererror", "ContainerInvalidSettings")
    assert "bogus" in {item.name: item.value for item in bad.failure_info.details}["Message"]


def test_wall_clock_expiry_and_terminate_stop_the_container(
    client: BatchClient, helpers: Any, runtime: ContainerRuntime, emulator: ThreadedEmulator
) -> None:
    new_job(client, "stop-job")
    limit = batch_models.BatchTaskConstraints(max_wall_clock_time="PT1S")
    add(client, "stop-job", "expires", "sleep 120", constraints=limit, container_settings=in_container())
    add(client, "stop-job", "terminated", "sleep 120", container_settings=in_container())
    running = helpers.wait_until(
        lambda: (found := client.get_task("stop-job", "terminated")).state == "running" and found, what="running"
    )
    helpers.wait_until(lambda: containers_of(runtime, emulator, running), timeout=30, what="the task's container")
    client.terminate_task("stop-job", "terminated")

    expired = finished(helpers, client, "stop-job", "expires")
    assert expired.execution_info.failure_info.code == "TaskEnded"
    details = {item.name: item.value for item in expired.execution_info.failure_info.details}
    assert details["Reason"] == "MaxWallClockTimeExpiry"
    terminated = finished(helpers, client, "stop-job", "terminated")
    assert terminated.execution_info.failure_info.code == "TaskEnded"
    assert containers_of(runtime, emulator, expired) == []
    assert containers_of(runtime, emulator, terminated) == []


def test_image_pull_failures_make_the_node_unusable_or_fail_the_task(client: BatchClient, helpers: Any) -> None:
    client.create_pool(container_pool("bad-images", [MISSING_IMAGE]))
    new_job(client, "pull-job")
    add(client, "pull-job", "missing", "true", container_settings=in_container(image_name=MISSING_IMAGE))

    node = helpers.wait_until(
        lambda: next((n for n in client.list_nodes("bad-images") if n.state == "unusable"), None),
        timeout=60,
        what="an unusable node",
    )
    (error,) = node.errors
    assert error.code == "ContainerInvalidImage"
    assert {item.name: item.value for item in error.error_details}["ContainerImage"] == MISSING_IMAGE
    failure = finished(helpers, client, "pull-job", "missing", timeout=60).execution_info.failure_info
    assert (failure.category, failure.code) == ("usererror", "ContainerInvalidImage")
    assert {item.name: item.value for item in failure.details}["ContainerImage"] == MISSING_IMAGE


def test_job_manager_preparation_and_release_tasks_run_in_containers(client: BatchClient, helpers: Any) -> None:
    # In the container the image's working directory is /, and /bin/busybox is the image's; on the machine
    # the command would run in its task directory.
    in_image = '/bin/sh -c \'test "$(pwd)" = / && test -x /bin/busybox && echo "$AZ_BATCH_TASK_ID in container"\''
    registry = batch_models.ContainerRegistryReference(registry_server="localhost", username="jm", password="s3cret")
    settings = in_container(working_directory="containerImageDefault", registry=registry)
    client.create_job(
        batch_models.BatchJobCreateOptions(
            id="side-job",
            pool_info=batch_models.BatchPoolInfo(pool_id=POOL),
            job_manager_task=batch_models.BatchJobManagerTask(
                id="manager", command_line=in_image, container_settings=settings
            ),
            job_preparation_task=batch_models.BatchJobPreparationTask(
                command_line=in_image, container_settings=settings
            ),
            job_release_task=batch_models.BatchJobReleaseTask(command_line=in_image, container_settings=settings),
        )
    )
    job = helpers.wait_until(  # the job manager's completion ends the job, after the release task
        lambda: (found := client.get_job("side-job")).state == "completed" and found, timeout=60, what="job completed"
    )
    assert job.execution_info.termination_reason == "JMComplete"
    manager = client.get_task("side-job", "manager")
    assert (manager.execution_info.exit_code, manager.container_settings.image_name) == (0, IMAGE_NAME)
    assert text(client, "side-job", "manager", "stdout.txt") == "manager in container\n"
    (status,) = client.list_job_preparation_and_release_task_status("side-job")
    preparation, release = status.job_preparation_task_execution_info, status.job_release_task_execution_info
    assert (preparation.exit_code, preparation.result) == (0, "success")
    assert (release.exit_code, release.result) == (0, "success")
    assert job.job_manager_task.container_settings.registry.password is None  # recorded, never returned
    assert job.job_preparation_task.container_settings.registry.username == "jm"


def test_job_tasks_with_container_settings_need_a_container_pool(client: BatchClient, helpers: Any) -> None:
    client.create_job(
        batch_models.BatchJobCreateOptions(
            id="plain-side-job",
            pool_info=batch_models.BatchPoolInfo(pool_id=PLAIN_POOL),
            job_preparation_task=batch_models.BatchJobPreparationTask(
                command_line="true", container_settings=in_container()
            ),
        )
    )
    add(client, "plain-side-job", "after-prep", "true")
    info = helpers.wait_until(
        lambda: (run := status_of(client, "plain-side-job")) and run.state == "completed" and run,
        what="the preparation task's run",
    )
    assert (info.result, info.failure_info.code) == ("failure", "ContainerInvalidSettings")
    with pytest.raises(HttpResponseError) as refused:
        client.create_job(
            batch_models.BatchJobCreateOptions(
                id="bad-settings",
                pool_info=batch_models.BatchPoolInfo(pool_id=POOL),
                job_manager_task=batch_models.BatchJobManagerTask(
                    id="m", command_line="true", container_settings=in_container(image_name="")
                ),
            )
        )
    assert (refused.value.status_code, refused.value.error.code) == (400, "MissingRequiredProperty")  # no imageName


def status_of(client: BatchClient, job_id: str) -> Any:
    statuses = list(client.list_job_preparation_and_release_task_status(job_id))
    return statuses[0].job_preparation_task_execution_info if statuses else None


def test_registry_passwords_are_recorded_but_never_returned(client: BatchClient) -> None:
    config = client.get_pool(POOL).virtual_machine_configuration.container_configuration
    assert config.container_image_names == [IMAGE_NAME]
    (registry,) = config.container_registries
    assert (registry.registry_server, registry.username, registry.password) == ("localhost", "robot", None)


def test_container_settings_need_a_container_pool(client: BatchClient, helpers: Any) -> None:
    new_job(client, "plain-job", PLAIN_POOL)
    add(client, "plain-job", "wants-container", "true", container_settings=in_container())
    failure = finished(helpers, client, "plain-job", "wants-container").execution_info.failure_info
    assert failure.code == "ContainerInvalidSettings"
    start_task = batch_models.BatchStartTask(command_line="true", container_settings=in_container())
    with pytest.raises(HttpResponseError) as refused:
        client.create_pool(helpers.pool_options("plain-with-container-start", start_task=start_task))
    assert refused.value.error.code == "InvalidPropertyValue"


@pytest.fixture(scope="module")
def without_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedEmulator]:
    missing = str(tmp_path_factory.mktemp("no-runtime") / "podman")
    config = EmulatorConfig(port=0, allocation_seconds=0.05, container_runtime=missing)
    with ThreadedEmulator(config) as running:
        yield running


def test_a_machine_without_a_runtime_refuses_container_pools_saying_what_to_install(
    without_runtime: ThreadedEmulator, helpers: Any
) -> None:
    batch = helpers.make_client(without_runtime)
    with pytest.raises(HttpResponseError) as refused:
        batch.create_pool(container_pool("no-runtime", [IMAGE_NAME]))
    assert refused.value.status_code == 400
    reason = {item.code: item.message for item in refused.value.error.details}["Reason"]
    assert "apt-get install podman runc" in reason
    batch.create_pool(helpers.pool_options("still-fine"))  # pools without containers are unaffected


def test_the_service_names_the_runtime_it_found_in_its_log(
    tmp_path: Path, helpers: Any, runtime: ContainerRuntime
) -> None:
    log = tmp_path / "service.log"
    command = [sys.executable, "-m", "batch_emulator", "--port", "0", "--data-dir", str(tmp_path / "data")]
    with log.open("w") as stream:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stream)
    try:
        line = helpers.wait_until(
            lambda: next((line for line in log.read_text().splitlines() if "container runtime" in line), None),
            timeout=60,
            what="the container runtime log line",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert f"container runtime: {runtime.name} {runtime.version} ({runtime.binary}" in line
    assert (tmp_path / "data" / "containers" / "containers.conf").exists() == (runtime.name == "podman")
