"""Local Batch service helpers for the benchmarks: start it, build clients that count HTTP traffic, make pools."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batchmodels
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from batchpipe.services import ServiceProcess, start_batch_emulator

UBUNTU_2204 = batchmodels.BatchVmImageReference(
    publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
)


@dataclass
class TrafficCounter(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Counts HTTP requests and bytes on the client side (a per-retry policy: every attempt on the wire counts).

    Response bytes are the body as received (``Content-Length`` for streamed downloads).
    """

    requests: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    _lock: Lock = field(default_factory=Lock, repr=False)

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        body = request.http_request.body
        size = len(body) if isinstance(body, bytes | str) else 0
        with self._lock:
            self.requests += 1
            self.request_bytes += size

    def on_response(self, request: PipelineRequest, response: PipelineResponse) -> None:  # type: ignore[type-arg]
        http_response = response.http_response
        try:
            size = len(http_response.body())
        except Exception:  # noqa: BLE001 - a streamed body is not loaded: use its declared length
            size = int(http_response.headers.get("Content-Length") or 0)
        with self._lock:
            self.response_bytes += size

    def snapshot(self) -> tuple[int, int, int]:
        """(requests, request bytes, response bytes) so far."""
        with self._lock:
            return self.requests, self.request_bytes, self.response_bytes


def client(url: str, counter: TrafficCounter | None = None) -> BatchClient:
    """An unmodified azure-batch client for the emulator's well-known account, optionally counting its traffic."""
    options: dict[str, Any] = {"per_retry_policies": [counter]} if counter is not None else {}
    return BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), **options)


@contextlib.contextmanager
def emulator(data_dir: Path) -> Iterator[ServiceProcess]:
    """Run the local Batch service as a child process with its state in ``data_dir``; stop it by its PID."""
    service = start_batch_emulator(data_dir)
    try:
        yield service
    finally:
        service.stop()


def create_pool(batch: BatchClient, pool_id: str, nodes: int, slots: int) -> None:
    """Create a pool of ``nodes`` Ubuntu nodes with ``slots`` task slots each and wait until every node is idle.

    Raises:
        TimeoutError: the nodes were not idle within a minute.
    """
    batch.create_pool(
        batchmodels.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=UBUNTU_2204, node_agent_sku_id="batch.node.ubuntu 22.04"
            ),
            target_dedicated_nodes=nodes,
            task_slots_per_node=slots,
        )
    )
    deadline = time.monotonic() + 60
    while True:
        states = [str(getattr(n.state, "value", n.state)) for n in batch.list_nodes(pool_id, select=["id", "state"])]
        if len(states) == nodes and all(state == "idle" for state in states):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"pool {pool_id}: nodes not idle after 60 s ({states})")
        time.sleep(0.05)  # polling the service with a deadline


def trivial_tasks(
    count: int, prefix: str = "t", command: str = "/bin/true"
) -> list[batchmodels.BatchTaskCreateOptions]:
    """``count`` tasks running ``command``."""
    return [batchmodels.BatchTaskCreateOptions(id=f"{prefix}{i:06d}", command_line=command) for i in range(count)]


def wait_completed(batch: BatchClient, job_id: str, count: int, timeout: float = 600.0, interval: float = 0.05) -> Any:
    """Poll the job's task counts until ``count`` tasks completed; return the counts.

    Raises:
        TimeoutError: not all completed in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        counts = batch.get_job_task_counts(job_id).task_counts
        if counts.completed >= count:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id}: {counts.completed}/{count} completed after {timeout:.0f} s")
        time.sleep(interval)  # polling the service with a deadline
