"""The local Batch service's part of local Entra ID mode: token audiences, and the local CA reaching the tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_emulator.auth import SharedKeyVerifier
from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from batch_emulator.errors import AuthenticationFailed
from batch_emulator.node.layout import task_paths
from batch_emulator.node.runner import task_environment
from batch_emulator.node.spec import TaskRunSpec
from batchpipe.local_identity import LocalDevelopmentCredential

BEARER = SharedKeyVerifier(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY, allow_bearer=True)


def bearer(scope: str) -> dict[str, str]:
    return {"authorization": f"Bearer {LocalDevelopmentCredential().get_token(scope).token}"}


def test_a_batch_token_is_accepted_as_bearer() -> None:
    principal = BEARER.verify(
        "GET", "/pools", "api-version=2025-06-01", bearer("https://batch.core.windows.net//.default")
    )

    assert principal.scheme == "Bearer"


def test_a_token_for_storage_is_refused_naming_its_audience() -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        BEARER.verify("GET", "/pools", "api-version=2025-06-01", bearer("https://storage.azure.com/.default"))

    assert caught.value.values == [
        (
            "AuthenticationErrorDetail",
            "The Bearer token is for audience 'https://storage.azure.com', not Azure Batch "
            "(request it for the scope https://batch.core.windows.net//.default).",
        )
    ]


def test_bearer_tokens_stay_refused_without_the_development_flag() -> None:
    shared_key_only = SharedKeyVerifier(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)

    with pytest.raises(AuthenticationFailed):
        shared_key_only.verify("GET", "/pools", "", bearer("https://batch.core.windows.net//.default"))


def job_spec(tmp_path: Path, environment_settings: list[dict[str, str]]) -> TaskRunSpec:
    return TaskRunSpec(
        kind="job",
        account_name=DEFAULT_ACCOUNT_NAME,
        pool_id="pool-1",
        node_id="node-1",
        node_root=tmp_path,
        job_id="job-1",
        task_id="task-1",
        command_line="/bin/true",
        resource_files=[],
        environment_settings=environment_settings,
        output_files=[],
        max_wall_clock_seconds=None,
    )


def test_tasks_trust_the_ca_the_emulator_was_started_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/state/tls/ca.pem")
    spec = job_spec(tmp_path, [])

    assert task_environment(spec, task_paths(spec))["SSL_CERT_FILE"] == "/state/tls/ca.pem"


def test_a_task_setting_overrides_the_passed_through_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/state/tls/ca.pem")
    spec = job_spec(tmp_path, [{"name": "SSL_CERT_FILE", "value": "/task/ca.pem"}])

    assert task_environment(spec, task_paths(spec))["SSL_CERT_FILE"] == "/task/ca.pem"


def test_without_a_local_ca_tasks_get_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    spec = job_spec(tmp_path, [])

    assert "SSL_CERT_FILE" not in task_environment(spec, task_paths(spec))
