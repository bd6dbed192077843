"""Settings of one emulator instance and the well-known development account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from batch_emulator.node.spec import TaskRunResult, TaskRunSpec

#: The well-known account of the local Batch service (like Azurite's ``devstoreaccount1``).
DEFAULT_ACCOUNT_NAME = "localbatch"
#: The well-known key of :data:`DEFAULT_ACCOUNT_NAME`; public on purpose, never use it outside development.
DEFAULT_ACCOUNT_KEY = "YmF0Y2hwaXBlLWxvY2FsLWJhdGNoLWVtdWxhdG9yLXdlbGwta25vd24tZGV2ZWxvcG1lbnQta2V5LTAwMDE="
#: The REST API version azure-batch 15.x speaks; older versions are accepted too.
API_VERSION = "2025-06-01"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

TaskRunner = Callable[["TaskRunSpec", "threading.Event"], "TaskRunResult"]


@dataclass
class EmulatorConfig:
    """How to run one local Batch service.

    Attributes:
        host: Interface to bind; anything but loopback needs ``allow_remote``.
        port: TCP port; 0 picks a free one.
        account_name: The single Batch account this instance serves.
        account_key: Its base64 SharedKey.
        data_dir: State directory (SQLite and node directories); None uses a fresh temporary directory.
        faults: Fault-injection spec applied at start (see docs/emulator.md).
        certfile: TLS certificate (PEM); with ``keyfile`` the service speaks https.
        keyfile: TLS private key (PEM).
        allow_bearer: Development mode: accept ``Authorization: Bearer`` tokens without checking signatures
            (a JWT whose audience is not Azure Batch is still refused).
        allow_remote: Allow binding a non-loopback interface.
        runner: Executes one task on a node; None uses ``batch_emulator.node.runner.run_task``.
        allocation_seconds: Time a node takes from ``creating`` to ``idle`` (without its start task).
        max_workers: Upper bound of task processes running at the same time.
        storage_endpoint: Where nodes reach production blob hosts: with ``http://127.0.0.1:10000`` (Azurite),
            ``https://<account>.blob.core.windows.net/<path>`` in resource files and output files is fetched
            from ``http://127.0.0.1:10000/<account>/<path>`` (path-style). None reaches the hosts as named.
        time_scale: Service-defined intervals (autoscale evaluation and sampling, schedule recurrence)
            pass this many times faster than real time; 1 is real time.
        container_runtime: The container runtime client to use (``podman``, ``docker`` or a path); None
            looks for podman, then docker. A client that does not work means no container support.
    """

    host: str = "127.0.0.1"
    port: int = 8001
    account_name: str = DEFAULT_ACCOUNT_NAME
    account_key: str = DEFAULT_ACCOUNT_KEY
    data_dir: Path | None = None
    faults: str | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    allow_bearer: bool = False
    allow_remote: bool = False
    runner: TaskRunner | None = field(default=None, repr=False)
    allocation_seconds: float = 0.5
    max_workers: int = 32
    storage_endpoint: str | None = None
    time_scale: float = 1.0
    container_runtime: str | None = None

    @property
    def scheme(self) -> str:
        """``https`` when a certificate is configured, else ``http``."""
        return "https" if self.certfile else "http"
