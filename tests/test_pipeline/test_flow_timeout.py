"""Monitoring gives up at its timeout and says which tasks were unfinished."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchpipe.errors import PipelineFailed
from batchpipe.local import LocalEndpoints
from batchpipe.services import PROJECT_ROOT, AzuriteInfo, ServiceProcess, running, start_batch_emulator
from flows.pipeline import top_words_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def slow_batch_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A local Batch service whose nodes take far longer to allocate than the test's monitoring timeout."""
    process = start_batch_emulator(tmp_path_factory.mktemp("slow-batch"), faults="slow_allocation=60s")
    with running(process):
        yield process


def test_timeout_fails_with_the_unfinished_tasks(
    azurite: AzuriteInfo,
    slow_batch_service: ServiceProcess,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    endpoints = LocalEndpoints(azurite, slow_batch_service.url, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    for name, value in endpoints.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BATCHPIPE_INPUT_CONTAINER", "timeout-input")
    monkeypatch.setenv("BATCHPIPE_MONITOR_TIMEOUT", "2")
    monkeypatch.setenv("BATCHPIPE_POLL_INTERVAL", "0.2")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(PipelineFailed) as caught:
        top_words_pipeline(inputs=[str(PROJECT_ROOT / "samples")], output_dir=str(tmp_path), approval="yes")
    message = str(caught.value)
    assert "timed out after 2s with 3 tasks unfinished" in message
    for name in ("harbour", "observatory", "orchard"):
        assert f"topn-{name}-" in message
    assert "(active)" in message
    assert "Left in place for a rerun" in message
    assert not list(tmp_path.glob("**/*_OUTPUT.txt"))
