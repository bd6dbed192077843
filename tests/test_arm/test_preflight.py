"""The pipeline's management-plane pre-flight against the local Batch service's ARM routes (key mode, http)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.logging import disable_run_logger
from typer.testing import CliRunner

from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from batchpipe.cli import app
from batchpipe.errors import ConfigurationError
from batchpipe.settings import load_settings
from tasks.capacity import NOT_CHECKED, check_capacity


@pytest.fixture(scope="module")
def key_mode_service() -> Iterator[ThreadedEmulator]:
    """The local Batch service as the local target runs it by default: shared keys over http."""
    with ThreadedEmulator(EmulatorConfig(port=0)) as running:
        yield running


@pytest.fixture
def local_settings(key_mode_service: ThreadedEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "BATCHPIPE_TARGET": "local",
        "BATCHPIPE_BATCH_ENDPOINT": key_mode_service.url,
        "BATCHPIPE_BATCH_ACCOUNT_NAME": key_mode_service.account_name,
        "BATCHPIPE_BATCH_ACCOUNT_KEY": key_mode_service.account_key,
        "BATCHPIPE_NODE_COUNT": "2",
    }.items():
        monkeypatch.setenv(name, value)
    yield load_settings
    key_mode_service.service.reset()


def set_quotas(service: ThreadedEmulator, **quotas: Any) -> None:
    httpx.put(f"{service.url}/_emulator/quotas", json=quotas).raise_for_status()


def test_the_local_target_checks_quotas_on_the_local_management_plane(local_settings: Any) -> None:
    with disable_run_logger():
        report = check_capacity.fn(local_settings(), "job-1")

    assert report.checked
    assert report.summary == "quotas allow 2 x standard_d2s_v3 in local (account localbatch)"


@pytest.mark.parametrize(
    ("quotas", "settings", "expected"),
    [
        (
            {
                "dedicatedCoreQuotaPerVMFamily": [{"name": "standardDSv3Family", "coreQuota": 2}],
                "dedicatedCoreQuotaPerVMFamilyEnforced": True,
            },
            {},
            "family standardDSv3Family, whose core quota is 2 with 0 in use (AccountVMSeriesCoreQuotaReached)",
        ),
        (
            {"lowPriorityCoreQuota": 0},
            {"use_spot_nodes": True, "spot_fallback_to_dedicated": False},
            "(AccountLowPriorityCoreQuotaReached)",
        ),
        ({"poolQuota": 0}, {}, "pool quota is 0 and 0 pools exist (PoolQuotaReached)"),
        ({"activeJobAndJobScheduleQuota": 0}, {}, "active job quota is 0 and 0 jobs are active"),
        ({}, {"vm_size": "standard_nc6"}, "VM size standard_nc6 is not offered in local"),
    ],
)
def test_a_pool_the_account_cannot_allocate_is_refused_before_anything_is_created(
    local_settings: Any,
    key_mode_service: ThreadedEmulator,
    quotas: dict[str, Any],
    settings: dict[str, Any],
    expected: str,
) -> None:
    set_quotas(key_mode_service, **quotas)

    with disable_run_logger(), pytest.raises(ConfigurationError) as caught:
        check_capacity.fn(local_settings(**settings), "job-1")

    assert expected in caught.value.message
    assert "\n" not in caught.value.message
    assert key_mode_service.service.account.pools == {}


def test_without_management_settings_azure_says_what_it_could_not_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPIPE_TARGET", "azure")
    monkeypatch.setenv("BATCHPIPE_BATCH_ENDPOINT", "https://acct.westeurope.batch.azure.com")

    with disable_run_logger():
        report = check_capacity.fn(load_settings())

    assert not report.checked
    assert report.summary == NOT_CHECKED


def test_plan_check_runs_the_management_plane_pre_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPIPE_VM_SIZE", "standard_nc6")

    result = CliRunner().invoke(app, ["plan", "--check", "--state-dir", str(tmp_path / "state")])

    assert result.exit_code != 0
    assert "pre-flight: VM size standard_nc6 is not offered in local: set BATCHPIPE_VM_SIZE" in result.output
    assert "Traceback" not in result.output


def test_azure_management_settings_name_the_account_and_resource_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    from batchpipe.clients import ManagementTarget, management_target

    for name, value in {
        "BATCHPIPE_TARGET": "azure",
        "BATCHPIPE_BATCH_ENDPOINT": "https://myacct.westeurope.batch.azure.com",
        "BATCHPIPE_ARM_SUBSCRIPTION_ID": "sub-1",
        "BATCHPIPE_ARM_RESOURCE_GROUP": "rg-1",
    }.items():
        monkeypatch.setenv(name, value)

    default = management_target(load_settings())
    overridden = management_target(
        load_settings(arm_account_name="other", arm_endpoint="https://management.usgovcloudapi.net/")
    )

    assert default == ManagementTarget("https://management.azure.com", "sub-1", "rg-1", "myacct")
    assert default.call_options == {}
    assert overridden == ManagementTarget("https://management.usgovcloudapi.net", "sub-1", "rg-1", "other")


def test_the_local_target_uses_the_local_service_and_sends_tokens_over_loopback_http(local_settings: Any) -> None:
    from batchpipe.clients import management_target

    target = management_target(local_settings())

    assert target is not None
    assert target.endpoint == local_settings().batch_endpoint
    assert target.call_options == {"enforce_https": False}
