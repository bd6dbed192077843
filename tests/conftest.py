"""Shared fixtures: a clean environment for every test, Azurite for the session, an offline Prefect."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from batchpipe.services import AzuriteInfo, ServiceProcess, prefect_environment, running, start_azurite

_SCRUBBED_PREFIXES = ("BATCHPIPE_", "AZURE_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without BATCHPIPE_* / AZURE_* variables from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def no_leaked_event_loop(request: pytest.FixtureRequest) -> None:
    """No event loop may be left running in the main thread by an earlier test (or a fixture of one).

    A leaked loop (a sync Playwright driver left alive, for one) silently turns Prefect's sync-compatible calls
    into un-awaited coroutines in every test that follows; fail at the first such test with the cause named.
    Browser tests share one Playwright driver per module, whose loop runs while they do.
    """
    if "playwright_browser" in request.fixturenames:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    pytest.fail(f"an event loop is still running in the main thread before this test: {loop!r}", pytrace=False)


@pytest.fixture(scope="session")
def azurite_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One Azurite blob service for the whole session, in a temporary location, stopped by its PID."""
    location = tmp_path_factory.mktemp("azurite")
    process = start_azurite(location)
    with running(process):
        yield process


@pytest.fixture(scope="session")
def azurite(azurite_process: ServiceProcess) -> AzuriteInfo:
    """Where the session's Azurite serves blobs (``blob_endpoint``, ``connection_string``, credentials)."""
    return AzuriteInfo(blob_endpoint=azurite_process.url, location=azurite_process.log_path.parent)


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temporary, offline Prefect API for the session (tests that run flows or tasks request it)."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.update(prefect_environment(home))
    # Steps are also tested as standalone task runs, outside a flow run.
    os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
