"""https with Bearer tokens (development mode) and conditional requests through azure-batch 15."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core import MatchConditions
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import ResourceModifiedError

from batch_emulator.server import EmulatorConfig, ThreadedEmulator


class StaticToken:
    """A TokenCredential returning one fixed token, as a development identity would."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes == ("https://batch.core.windows.net//.default",)
        return AccessToken("eyJ0eXAiOiJKV1QifQ.e30.local", 4_102_444_800)


def test_bearer_over_https(tmp_path: Path, helpers: Any) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))
    config = EmulatorConfig(port=0, certfile=cert_file, keyfile=key_file, allow_bearer=True, allocation_seconds=0.05)
    with ThreadedEmulator(config) as secure:
        assert secure.url.startswith("https://127.0.0.1:")
        with BatchClient(secure.url, StaticToken(), connection_verify=str(ca_file)) as client:  # type: ignore[arg-type]
            client.create_pool(helpers.pool_options("tls-pool", nodes=0))
            assert [pool.id for pool in client.list_pools()] == ["tls-pool"]
        with BatchClient(secure.url, AzureNamedKeyCredential(secure.account_name, secure.account_key)) as shared_key:
            assert list(shared_key.list_pools(connection_verify=str(ca_file)))


def test_conditional_delete_with_a_stale_etag(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    client.create_job(
        batch_models.BatchJobCreateOptions(id="etag-job", pool_info=batch_models.BatchPoolInfo(pool_id="none"))
    )
    stale = client.get_job("etag-job").etag
    client.update_job("etag-job", batch_models.BatchJobUpdateOptions(priority=10))
    with pytest.raises(ResourceModifiedError) as caught:
        client.begin_delete_job(
            "etag-job", etag=stale, match_condition=MatchConditions.IfNotModified, polling_interval=0
        )
    assert caught.value.status_code == 412
    assert caught.value.error.code == "ConditionNotMet"
    fresh = client.get_job("etag-job").etag
    client.begin_delete_job(
        "etag-job", etag=fresh, match_condition=MatchConditions.IfNotModified, polling_interval=0
    ).result()
