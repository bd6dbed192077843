"""Fixtures for local Entra ID mode: Azurite over HTTPS with OAuth, the local Batch service in TLS + Bearer mode."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from batchpipe.local import LocalEndpoints, local_stack


@pytest.fixture(scope="session")
def entra_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoints]:
    """Both services in local Entra ID mode (random account keys nobody is given), stopped by their PIDs."""
    with local_stack(tmp_path_factory.mktemp("entra-stack"), auth="entra") as endpoints:
        yield endpoints


@pytest.fixture
def entra_env(
    monkeypatch: pytest.MonkeyPatch,
    entra_stack: LocalEndpoints,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> LocalEndpoints:
    """The run's environment as `batchpipe run --local-auth entra` sets it, with containers and a pool per test."""
    suffix = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    variables = entra_stack.environment() | {
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
    return entra_stack
