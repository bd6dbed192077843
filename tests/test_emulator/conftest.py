"""Fixtures for the local Batch service tests: an in-process service and an unmodified azure-batch client."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient

from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from batchpipe.services import AzuriteInfo
from tests.polling import wait_until

T = TypeVar("T")
#: The time scale of the ``scaled_emulator`` fixture.
SCALED_TIME = 600.0
UBUNTU_2204 = {
    "publisher": "canonical",
    "offer": "0001-com-ubuntu-server-jammy",
    "sku": "22_04-lts",
    "version": "latest",
}


def pool_options(pool_id: str, *, nodes: int = 1, slots: int = 1, **extra: Any) -> batch_models.BatchPoolCreateOptions:
    """A Batch pool on the emulator's Ubuntu 22.04 image."""
    return batch_models.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
            image_reference=batch_models.BatchVmImageReference(**UBUNTU_2204),
            node_agent_sku_id="batch.node.ubuntu 22.04",
        ),
        target_dedicated_nodes=nodes,
        task_slots_per_node=slots,
        **extra,
    )


_open_clients: list[BatchClient] = []


def make_client(emulator: ThreadedEmulator, key: str | None = None) -> BatchClient:
    """An azure-batch client for the emulator's account (closed at the end of the test module)."""
    client = BatchClient(emulator.url, AzureNamedKeyCredential(emulator.account_name, key or emulator.account_key))
    _open_clients.append(client)
    return client


@pytest.fixture(autouse=True, scope="module")
def close_clients() -> Iterator[None]:
    """Close the clients a module opened (their HTTP sessions would otherwise leak sockets)."""
    yield
    while _open_clients:
        _open_clients.pop().close()


def wait_for_idle_nodes(client: BatchClient, pool_id: str, count: int) -> list[batch_models.BatchNode]:
    """Wait until the pool has ``count`` idle nodes."""

    def idle() -> list[batch_models.BatchNode] | None:
        nodes = list(client.list_nodes(pool_id))
        ready = len(nodes) == count and all(node.state == "idle" for node in nodes)
        return nodes if ready else None

    return wait_until(idle, what=f"{count} idle nodes in {pool_id}")


def ready_pool(
    client: BatchClient, pool_id: str, *, nodes: int = 1, slots: int = 1, **extra: Any
) -> list[batch_models.BatchNode]:
    """Create a pool of ``nodes`` nodes (see :func:`pool_options`) and wait until they are idle; returns them."""
    client.create_pool(pool_options(pool_id, nodes=nodes, slots=slots, **extra))
    return wait_for_idle_nodes(client, pool_id, nodes)


def wait_for_tasks(client: BatchClient, job_id: str, total: int, timeout: float = 30.0) -> Any:
    """Wait until ``total`` tasks of the job are completed; returns the task counts."""

    def done() -> Any:
        counts = client.get_job_task_counts(job_id)
        return counts if counts.task_counts.completed == total else None

    return wait_until(done, timeout=timeout, what=f"{total} completed tasks in {job_id}")


def run_emulator(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m batch_emulator`` with ``args`` to its end (for options it refuses before serving)."""
    command = [sys.executable, "-m", "batch_emulator", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def has_file(client: BatchClient, job_id: str, task_id: str, name: str) -> bool:
    """Whether a task's directory holds ``name`` yet (False while the directory does not exist)."""
    try:
        return name in {item.name for item in client.list_task_files(job_id, task_id, recursive=True)}
    except HttpResponseError:
        return False


class Helpers:
    """Test helpers shared through the ``helpers`` fixture (test modules cannot import conftest)."""

    wait_until = staticmethod(wait_until)
    pool_options = staticmethod(pool_options)
    make_client = staticmethod(make_client)
    wait_for_idle_nodes = staticmethod(wait_for_idle_nodes)
    ready_pool = staticmethod(ready_pool)
    wait_for_tasks = staticmethod(wait_for_tasks)
    has_file = staticmethod(has_file)
    run_emulator = staticmethod(run_emulator)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    """The helper functions above."""
    return Helpers


@pytest.fixture
def container(azurite: AzuriteInfo) -> Iterator[ContainerClient]:
    """A new blob container in Azurite, deleted after the test."""
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    created = client.create_container(f"test-{uuid.uuid4().hex[:12]}")
    yield created
    created.delete_container()


@pytest.fixture(scope="module")
def emulator() -> Iterator[ThreadedEmulator]:
    """One local Batch service per test module (fast node allocation)."""
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as running:
        yield running


@pytest.fixture(scope="module")
def scaled_emulator() -> Iterator[ThreadedEmulator]:
    """One local Batch service per test module whose service-defined intervals pass 600 times faster
    (a 5-minute autoscale interval lasts 0.5 s, a 1-minute schedule recurrence 0.1 s)."""
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05, time_scale=SCALED_TIME)) as running:
        yield running
