"""Container tasks through the docker-flavoured client path, with a `docker` command that answers.

On CI that is Debian's `podman-docker` (a `docker` command backed by podman; `.ci/container-deps` installs it): the
service then speaks docker to it (`version` probe, `image inspect`, no `--replace`, `rm -f` without `--time`,
credentials through `DOCKER_CONFIG`), which is the code path a real Docker engine gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models

from batch_emulator.node.containers.busybox import IMAGE_NAME, BusyboxMissingError, ensure_busybox_image
from batch_emulator.node.containers.runtime import ContainerRuntime, RuntimeNotFoundError, detect_runtime
from batch_emulator.server import EmulatorConfig, ThreadedEmulator

POOL = "docker-pool"
# `docker` on PATH may be a client without an engine (then the next one is tried); /usr/bin/docker is podman-docker's.
DOCKER_CLIENTS = ("docker", "/usr/bin/docker")
MISSING_IMAGE = "localhost/batchpipe-test/missing-docker:1"  # pulling it only ever asks 127.0.0.1
CONTAINER_IMAGE = batch_models.BatchVmImageReference(
    publisher="microsoft-azure-batch", offer="ubuntu-server-container", sku="20-04-lts", version="latest"
)


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> ContainerRuntime:
    """A working docker-flavoured client with the test image (skips only without one)."""
    reasons = []
    for name in DOCKER_CLIENTS:
        try:
            found = detect_runtime(name, tmp_path_factory.mktemp("docker-conf"))
        except RuntimeNotFoundError as error:
            reasons.append(str(error))
            continue
        try:
            ensure_busybox_image(found)
        except BusyboxMissingError as error:
            pytest.skip(str(error))
        return found
    pytest.skip(f"no docker client answers (apt-get install podman-docker): {'; '.join(reasons)}")


@pytest.fixture(scope="module")
def docker_emulator(docker: ContainerRuntime) -> Iterator[ThreadedEmulator]:
    """A local Batch service told to use that docker client (``--container-runtime``)."""
    config = EmulatorConfig(port=0, allocation_seconds=0.05, container_runtime=docker.binary)
    with ThreadedEmulator(config) as running:
        yield running


@pytest.fixture(scope="module")
def client(docker_emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    batch: BatchClient = helpers.make_client(docker_emulator)
    registry = batch_models.ContainerRegistryReference(registry_server="localhost", username="robot", password="s3cret")
    batch.create_pool(
        batch_models.BatchPoolCreateOptions(
            id=POOL,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
                image_reference=CONTAINER_IMAGE,
                node_agent_sku_id="batch.node.ubuntu 20.04",
                container_configuration=batch_models.BatchContainerConfiguration(
                    type="dockerCompatible", container_image_names=[IMAGE_NAME], container_registries=[registry]
                ),
            ),
            target_dedicated_nodes=1,
            task_slots_per_node=4,
        )
    )
    batch.create_job(batch_models.BatchJobCreateOptions(id="job", pool_info=batch_models.BatchPoolInfo(pool_id=POOL)))
    helpers.wait_for_idle_nodes(batch, POOL, 1)
    return batch


def add(client: BatchClient, task_id: str, command: str, image: str = IMAGE_NAME, **options: Any) -> None:
    settings = batch_models.BatchTaskContainerSettings(image_name=image)
    client.create_task(
        "job",
        batch_models.BatchTaskCreateOptions(id=task_id, command_line=command, container_settings=settings, **options),
    )


def finished(helpers: Any, client: BatchClient, task_id: str, timeout: float = 30) -> Any:
    return helpers.wait_until(
        lambda: (found := client.get_task("job", task_id)).state == "completed" and found,
        timeout=timeout,
        what=f"{task_id} completed",
    )


def text(client: BatchClient, task_id: str, name: str) -> str:
    return b"".join(client.download_task_file("job", task_id, name)).decode()


def test_the_service_uses_the_docker_client_it_was_given(
    docker: ContainerRuntime, docker_emulator: ThreadedEmulator
) -> None:
    used = docker_emulator.service.account.containers.get()
    assert (used.name, used.binary) == ("docker", docker.binary)
    assert used.version not in ("", "unknown")  # the server's version, from `docker version`


def test_a_container_task_runs_through_docker_with_its_output_and_environment(
    client: BatchClient, helpers: Any
) -> None:
    script = (
        'echo "$AZ_BATCH_TASK_ID $GREETING"; test -x /bin/busybox && echo in-image;'
        ' echo "$AZ_BATCH_TASK_ID" > "$AZ_BATCH_TASK_WORKING_DIR/out.txt"; echo oops >&2; exit 4'
    )
    greeting = batch_models.EnvironmentSetting(name="GREETING", value="hello docker")
    add(client, "greet", f"/bin/sh -c '{script}'", environment_settings=[greeting])

    task = finished(helpers, client, "greet")
    assert (task.execution_info.exit_code, task.execution_info.failure_info.code) == (4, "FailureExitCode")
    assert text(client, "greet", "stdout.txt") == "greet hello docker\nin-image\n"
    assert text(client, "greet", "wd/out.txt") == "greet\n"
    assert text(client, "greet", "stderr.txt").endswith("oops\n")  # podman-docker may print a notice first


def test_terminating_a_container_task_removes_its_container(
    client: BatchClient, helpers: Any, docker: ContainerRuntime
) -> None:
    add(client, "sleeper", "sleep 120")
    helpers.wait_until(lambda: client.get_task("job", "sleeper").state == "running", what="sleeper running")

    def containers() -> list[str]:
        names = docker.call("ps", "-a", "--format", "{{.Names}}", timeout=60).stdout.split()
        return [name for name in names if name.startswith("batch-sleeper-")]

    helpers.wait_until(containers, timeout=30, what="the task's container")
    client.terminate_task("job", "sleeper")

    task = finished(helpers, client, "sleeper")
    assert task.execution_info.failure_info.code == "TaskEnded"
    helpers.wait_until(lambda: not containers(), timeout=30, what="the container removed")


def test_a_missing_image_is_pulled_with_the_registry_credentials_and_fails_the_task(
    client: BatchClient, helpers: Any
) -> None:
    add(client, "missing", "true", image=MISSING_IMAGE)

    failure = finished(helpers, client, "missing", timeout=60).execution_info.failure_info
    assert (failure.category, failure.code) == ("usererror", "ContainerInvalidImage")
    details = {item.name: item.value for item in failure.details}
    assert details["ContainerImage"] == MISSING_IMAGE
    assert "localhost" in details["Message"]  # the client's own error: it tried the image's registry
    assert "s3cret" not in details["Message"]
