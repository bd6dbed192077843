"""Spot nodes with a dedicated fallback: no Spot capacity does not leave the run waiting for its timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from batchpipe.errors import ConfigurationError
from batchpipe.local import LocalEndpoints
from batchpipe.services import PROJECT_ROOT, AzuriteInfo, ServiceProcess, running, start_batch_emulator
from flows.pipeline import top_words_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def no_spot_capacity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A local Batch service whose account has no low-priority (Spot) core quota."""
    process = start_batch_emulator(tmp_path_factory.mktemp("no-spot"), faults="quota.low_priority_cores=0")
    with running(process):
        yield process


@pytest.fixture
def spot_env(
    azurite: AzuriteInfo, no_spot_capacity: ServiceProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> LocalEndpoints:
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    endpoints = LocalEndpoints(azurite, no_spot_capacity.url, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    for name, value in endpoints.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BATCHPIPE_USE_SPOT_NODES", "true")
    monkeypatch.setenv("BATCHPIPE_POLL_INTERVAL", "0.2")
    monkeypatch.setenv("BATCHPIPE_MONITOR_TIMEOUT", "120")
    monkeypatch.chdir(tmp_path)
    return endpoints


def test_no_spot_capacity_falls_back_to_dedicated_nodes(
    spot_env: LocalEndpoints, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BATCHPIPE_POOL_ID", "spot-fallback")
    monkeypatch.setenv("BATCHPIPE_INPUT_CONTAINER", "spot-fallback-in")
    summary = top_words_pipeline(
        inputs=[str(PROJECT_ROOT / "samples" / "harbour.txt")], output_dir=str(tmp_path), approval="no"
    )
    assert [o["file"] for o in summary["outputs"]] == ["harbour_OUTPUT.txt"]
    client = BatchClient(
        endpoint=spot_env.batch_url,
        credential=AzureNamedKeyCredential(spot_env.batch_account_name, spot_env.batch_account_key),
    )
    pool = client.get_pool("spot-fallback")
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (1, 0)
    client.begin_delete_pool("spot-fallback", polling_interval=0).result()


def test_without_fallback_the_quota_is_named_at_once(
    spot_env: LocalEndpoints, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BATCHPIPE_POOL_ID", "spot-only")
    monkeypatch.setenv("BATCHPIPE_INPUT_CONTAINER", "spot-only-in")
    monkeypatch.setenv("BATCHPIPE_SPOT_FALLBACK_TO_DEDICATED", "false")
    # The management-plane pre-flight reads the account's Spot quota and refuses before anything is created.
    with pytest.raises(ConfigurationError, match="AccountLowPriorityCoreQuotaReached") as caught:
        top_words_pipeline(
            inputs=[str(PROJECT_ROOT / "samples" / "orchard.txt")], output_dir=str(tmp_path), approval="yes"
        )
    assert "BATCHPIPE_USE_SPOT_NODES=false" in caught.value.message
    credential = AzureNamedKeyCredential(spot_env.batch_account_name, spot_env.batch_account_key)
    with BatchClient(spot_env.batch_url, credential) as client:
        assert "spot-only" not in {pool.id for pool in client.list_pools()}
