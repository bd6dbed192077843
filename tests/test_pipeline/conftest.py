"""Fixtures for running the whole pipeline: the local Batch service and the environment that points at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batchpipe.local import LocalEndpoints
from batchpipe.services import AzuriteInfo, ServiceProcess, running, start_batch_emulator


@pytest.fixture(scope="session")
def batch_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The local Batch service as a child process (as `batchpipe run` starts it), stopped by its PID."""
    process = start_batch_emulator(tmp_path_factory.mktemp("batch"))
    with running(process):
        yield process


@pytest.fixture
def local_endpoints(azurite: AzuriteInfo, batch_service: ServiceProcess) -> LocalEndpoints:
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    return LocalEndpoints(azurite, batch_service.url, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)


@pytest.fixture
def pipeline_env(
    monkeypatch: pytest.MonkeyPatch,
    local_endpoints: LocalEndpoints,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> LocalEndpoints:
    """BATCHPIPE_* variables for one test: local services, fast polling, containers and pool of its own."""
    import hashlib

    suffix = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    variables = local_endpoints.environment() | {
        "BATCHPIPE_APPLICATION_CONTAINER": f"app-{suffix}",
        "BATCHPIPE_INPUT_CONTAINER": f"in-{suffix}",
        "BATCHPIPE_OUTPUT_CONTAINER": f"out-{suffix}",
        "BATCHPIPE_POOL_ID": f"pool-{suffix}",
        "BATCHPIPE_POLL_INTERVAL": "0.2",
        "BATCHPIPE_MAX_POLL_INTERVAL": "0.5",
        "BATCHPIPE_MONITOR_TIMEOUT": "120",
        "BATCHPIPE_APPROVAL_TIMEOUT": "60",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path_factory.mktemp("workdir"))
    return local_endpoints
