"""The local development credential, the local CA, and which credential the settings select (no services)."""

from __future__ import annotations

import base64
import ipaddress
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ClientAuthenticationError
from cryptography import x509

from batchpipe.clients import batch_client, blob_service_client
from batchpipe.local import LocalEndpoints
from batchpipe.local_identity import (
    LOCAL_OBJECT_ID,
    LOCAL_TENANT_ID,
    LocalDevelopmentCredential,
    ensure_local_tls,
)
from batchpipe.services import AzuriteInfo
from batchpipe.settings import load_settings


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Header, claims and signature of a JWT (no verification)."""
    header, claims, signature = token.split(".")

    def part(text: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))

    return part(header), part(claims), signature


@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        ("https://storage.azure.com/.default", "https://storage.azure.com"),
        # azure-batch 15 asks for this scope (double slash); Entra ID answers with the resource URI.
        ("https://batch.core.windows.net//.default", "https://batch.core.windows.net/"),
        # azure-mgmt-batch (the management plane, served by the local Batch service too).
        ("https://management.azure.com/.default", "https://management.azure.com/"),
    ],
)
def test_tokens_carry_the_audience_entra_id_would_issue(scope: str, audience: str) -> None:
    access = LocalDevelopmentCredential().get_token(scope)

    header, claims, signature = decode(access.token)
    assert header == {"alg": "none", "typ": "JWT"}
    assert signature == ""
    assert claims["aud"] == audience
    assert claims["iss"] == f"https://sts.windows.net/{LOCAL_TENANT_ID}/"  # the prefix Azurite's basic OAuth wants
    assert (claims["oid"], claims["tid"]) == (LOCAL_OBJECT_ID, LOCAL_TENANT_ID)  # user-delegation keys need both
    assert claims["nbf"] < claims["iat"] < claims["exp"] == access.expires_on


@pytest.mark.parametrize(
    "scopes",
    [("https://vault.azure.net/.default",), ("https://storage.azure.com/.default", "https://vault.azure.net")],
)
def test_other_or_several_scopes_are_refused(scopes: tuple[str, ...]) -> None:
    with pytest.raises(ClientAuthenticationError, match="scope"):
        LocalDevelopmentCredential().get_token(*scopes)


def test_tls_files_are_made_once_for_loopback_and_reused(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path)

    assert stat.S_IMODE(tls.key_file.stat().st_mode) == 0o600
    server = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    authority = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    assert server.issuer == authority.subject
    contents = [path.read_bytes() for path in (tls.ca_file, tls.cert_file, tls.key_file)]

    again = ensure_local_tls(tmp_path)

    assert again == tls
    assert [path.read_bytes() for path in (again.ca_file, again.cert_file, again.key_file)] == contents


def test_local_entra_mode_selects_the_local_credential_for_both_services() -> None:
    settings = load_settings(
        target="local",
        local_auth="entra",
        batch_endpoint="https://127.0.0.1:9",
        storage_account_url="https://127.0.0.1:9/devstoreaccount1",
    )

    assert isinstance(blob_service_client(settings).credential, LocalDevelopmentCredential)
    assert isinstance(batch_client(settings)._config.credential, LocalDevelopmentCredential)


def test_shared_keys_still_win_in_local_key_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        target="local",
        batch_endpoint="http://127.0.0.1:9",
        batch_account_name="localbatch",
        batch_account_key="a2V5",
        storage_account_url="http://127.0.0.1:9/devstoreaccount1",
        storage_account_key="a2V5",
    )

    assert isinstance(batch_client(settings)._config.credential, AzureNamedKeyCredential)
    assert blob_service_client(settings).credential.account_key == "a2V5"


class RecordedDefaultAzureCredential:
    """Stands in for DefaultAzureCredential, whose construction and use would probe IMDS (169.254.169.254)."""

    calls: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("building a client must not ask for a token")


def test_the_azure_target_ignores_local_auth_and_keeps_default_azure_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import azure.identity

    monkeypatch.setattr(RecordedDefaultAzureCredential, "calls", [])
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", RecordedDefaultAzureCredential)
    settings = load_settings(
        target="azure",
        local_auth="entra",
        batch_endpoint="https://example.westeurope.batch.azure.com",
        storage_account_url="https://example.blob.core.windows.net",
    )

    storage_credential = blob_service_client(settings).credential
    batch_credential = batch_client(settings)._config.credential

    assert isinstance(storage_credential, RecordedDefaultAzureCredential)
    assert isinstance(batch_credential, RecordedDefaultAzureCredential)
    assert RecordedDefaultAzureCredential.calls == [{"exclude_interactive_browser_credential": True}] * 2


def test_entra_environment_names_no_key_and_trusts_the_local_ca(tmp_path: Path) -> None:
    storage = AzuriteInfo(blob_endpoint="https://127.0.0.1:1/devstoreaccount1", account_key="c2VjcmV0")
    endpoints = LocalEndpoints(storage, "https://127.0.0.1:2", "localbatch", "c2VjcmV0", "entra", tmp_path / "ca.pem")

    variables = endpoints.environment()

    assert variables == {
        "BATCHPIPE_TARGET": "local",
        "BATCHPIPE_LOCAL_AUTH": "entra",
        "BATCHPIPE_BATCH_ENDPOINT": "https://127.0.0.1:2",
        "BATCHPIPE_STORAGE_ACCOUNT_URL": "https://127.0.0.1:1/devstoreaccount1",
        "REQUESTS_CA_BUNDLE": str(tmp_path / "ca.pem"),
        "SSL_CERT_FILE": str(tmp_path / "ca.pem"),
    }
    assert "c2VjcmV0" not in json.dumps(variables)
