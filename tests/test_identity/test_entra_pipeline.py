"""The whole pipeline in local Entra ID mode: HTTPS everywhere, Bearer tokens, user-delegation SAS, no account key."""

from __future__ import annotations

import logging
import os
import ssl
import string
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobServiceClient
from typer.testing import CliRunner

from batch_emulator.config import DEFAULT_ACCOUNT_KEY
from batchpipe.cli import app
from batchpipe.errors import CloudError
from batchpipe.local import LocalEndpoints
from batchpipe.local_identity import (
    BATCH_AUDIENCE,
    LOCAL_OBJECT_ID,
    LOCAL_TENANT_ID,
    STORAGE_AUDIENCE,
    LocalDevelopmentCredential,
    unsigned_token,
)
from batchpipe.services import AZURITE_ACCOUNT_KEY, PROJECT_ROOT
from flows.pipeline import top_words_pipeline
from tasks._common import azure_call
from tasks.submission import OUTPUT_SAS_VARIABLE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]
SAMPLES = PROJECT_ROOT / "samples"


def tutorial_top_words(path: Path, n: int) -> list[tuple[str, int]]:
    """The tutorial's counting, written out independently: read all, split, strip ASCII punctuation."""
    words = [token.strip(string.punctuation) for token in path.read_text("utf-8").split()]
    return Counter(words).most_common(n)


def batch_with_bearer(endpoints: LocalEndpoints) -> BatchClient:
    return BatchClient(
        endpoint=endpoints.batch_url, credential=LocalDevelopmentCredential(), connection_verify=str(endpoints.ca_file)
    )


def emulator_requests(endpoints: LocalEndpoints) -> int:
    trust = ssl.create_default_context(cafile=endpoints.ca_file)
    stats = httpx.get(f"{endpoints.batch_url}/_emulator/stats", verify=trust).json()
    return int(stats["requestsServed"])


def sas_fields(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def assert_user_delegation_sas(url: str, permissions: str) -> None:
    fields = sas_fields(url)
    assert (fields["skoid"], fields["sktid"], fields["sks"]) == (LOCAL_OBJECT_ID, LOCAL_TENANT_ID, "b"), url
    assert fields["sp"] == permissions
    assert fields["sig"]


def test_pipeline_runs_on_entra_id_with_bearer_tokens_and_user_delegation_sas(
    entra_env: LocalEndpoints, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="batchpipe.local_identity")
    # Nothing in the run's environment can sign with a key: both services have random keys nobody was given.
    assert not [n for n in os.environ if n.startswith("BATCHPIPE_") and n.endswith(("_KEY", "_CONNECTION_STRING"))]
    assert entra_env.batch_url.startswith("https://")
    assert entra_env.storage.blob_endpoint.startswith("https://")
    requests_before = emulator_requests(entra_env)

    summary = top_words_pipeline(inputs=[str(SAMPLES)], output_dir=str(tmp_path), num_words=3, approval="no")

    for item in summary["outputs"]:
        source = SAMPLES / item["file"].replace("_OUTPUT", "")
        assert [tuple(word) for word in item["top_words"]] == tutorial_top_words(source, 3)
        assert Path(item["path"]).is_file()
    assert len(summary["outputs"]) == 3
    assert summary["containers"] == "deleted"
    # Batch served the run with Bearer tokens minted for its audience (SharedKey was impossible, see above).
    assert emulator_requests(entra_env) > requests_before
    minted = Counter(record.getMessage().rsplit(" ", 1)[-1] for record in caplog.records)
    assert minted[BATCH_AUDIENCE] >= 1
    assert minted[STORAGE_AUDIENCE] >= 1
    # Every SAS handed to the nodes is a user-delegation SAS signed for the local principal.
    batch = batch_with_bearer(entra_env)
    start_task = batch.get_pool(summary["pool_id"]).start_task
    assert start_task is not None
    assert start_task.resource_files
    for resource in start_task.resource_files:
        assert_user_delegation_sas(str(resource.http_url), "r")
    tasks = list(batch.list_tasks(summary["job_id"]))
    assert len(tasks) == 3
    for task in tasks:
        assert task.execution_info is not None
        assert task.execution_info.result == "success"
        assert task.resource_files
        assert_user_delegation_sas(str(task.resource_files[0].http_url), "r")
        settings = {s.name: s.value for s in task.environment_settings or []}
        assert_user_delegation_sas(f"?{settings[OUTPUT_SAS_VARIABLE]}", "cw")
        assert task.output_files
        for output in task.output_files:
            assert output.destination.container is not None
            assert_user_delegation_sas(output.destination.container.container_url, "cw")


def test_the_well_known_keys_are_refused_in_entra_mode(entra_stack: LocalEndpoints) -> None:
    ca = str(entra_stack.ca_file)
    storage = BlobServiceClient(
        entra_stack.storage.blob_endpoint,
        credential={"account_name": entra_stack.storage.account_name, "account_key": AZURITE_ACCOUNT_KEY},
        connection_verify=ca,
    )
    batch = BatchClient(
        endpoint=entra_stack.batch_url,
        credential=AzureNamedKeyCredential(entra_stack.batch_account_name, DEFAULT_ACCOUNT_KEY),
        connection_verify=ca,
    )

    with pytest.raises(ClientAuthenticationError):
        list(storage.list_containers())
    with pytest.raises(HttpResponseError, match="AuthenticationFailed"):
        list(batch.list_pools())


class WrongAudienceCredential:
    """A credential that answers every scope with a token for another service."""

    def __init__(self, audience: str) -> None:
        self.audience = audience

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(unsigned_token(self.audience), int(time.time()) + 3600)


def test_a_storage_token_sent_to_batch_is_refused_in_one_clear_line(entra_stack: LocalEndpoints) -> None:
    batch = BatchClient(
        endpoint=entra_stack.batch_url,
        credential=WrongAudienceCredential(STORAGE_AUDIENCE),
        connection_verify=str(entra_stack.ca_file),
    )

    with pytest.raises(CloudError) as caught, azure_call("Batch", "listing pools"):
        list(batch.list_pools())

    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("Batch failed while listing pools: AuthenticationFailed: ")
    assert "The Bearer token is for audience 'https://storage.azure.com', not Azure Batch" in message


def test_a_batch_token_sent_to_storage_is_refused_in_one_clear_line(entra_stack: LocalEndpoints) -> None:
    storage = BlobServiceClient(
        entra_stack.storage.blob_endpoint,
        credential=WrongAudienceCredential(BATCH_AUDIENCE),
        connection_verify=str(entra_stack.ca_file),
    )

    with pytest.raises(CloudError) as caught, azure_call("Storage", "listing containers"):
        list(storage.list_containers())

    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("Storage failed while listing containers: AuthenticationFailed: ")
    assert "Invalid token audience." in message


def test_cli_local_auth_entra_runs_the_pipeline_on_its_own_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BATCHPIPE_POLL_INTERVAL", "0.2")
    monkeypatch.setenv("BATCHPIPE_MAX_POLL_INTERVAL", "0.5")
    state_dir = tmp_path / "state"
    trust_before = {name: os.environ.get(name) for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}

    result = CliRunner().invoke(
        app,
        ["run", "--local-auth", "entra", "--approve", "yes", "--state-dir", str(state_dir), "--input", str(SAMPLES)],
    )

    assert result.exit_code == 0, result.output
    assert "harbour_OUTPUT.txt" in result.output
    assert (state_dir / "tls" / "ca.pem").is_file()
    assert "successfully listens on https://127.0.0.1:" in (state_dir / "azurite" / "azurite.log").read_text()
    # The local CA was trusted for the run only.
    assert {name: os.environ.get(name) for name in trust_before} == trust_before
