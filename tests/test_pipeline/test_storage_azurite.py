"""Storage steps against a real Azurite: least-privilege SAS, the upload cache, verified downloads."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from azure.storage.blob import BlobServiceClient

from batchpipe.naming import resolve_inputs
from batchpipe.sas import SasSigner, with_token
from batchpipe.services import AzuriteInfo
from batchpipe.settings import Settings, load_settings
from tasks.storage import create_containers, delete_containers, download_outputs, upload_files

pytestmark = pytest.mark.integration


def _status(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture
def client(azurite: AzuriteInfo) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def settings(azurite: AzuriteInfo, request: pytest.FixtureRequest) -> Settings:
    suffix = hashlib.sha256(request.node.name.encode()).hexdigest()[:8]
    return load_settings(
        storage_connection_string=azurite.connection_string,
        application_container=f"app-{suffix}",
        input_container=f"in-{suffix}",
        output_container=f"out-{suffix}",
    )


def test_input_sas_can_read_one_blob_and_nothing_else(client: BlobServiceClient, azurite: AzuriteInfo) -> None:
    container = client.create_container("sas-read")
    container.upload_blob("a.txt", b"alpha")
    container.upload_blob("b.txt", b"beta")
    signer = SasSigner.for_client(client, timedelta(hours=1), azurite.account_key)
    base = f"{azurite.blob_endpoint}/sas-read"
    token = signer.blob_read_token("sas-read", "a.txt")
    assert _status("GET", with_token(f"{base}/a.txt", token)) == 200
    assert _status("GET", with_token(f"{base}/b.txt", token)) == 403
    put = {"x-ms-blob-type": "BlockBlob"}
    assert _status("PUT", with_token(f"{base}/a.txt", token), b"overwrite", put) == 403
    assert _status("GET", f"{base}?restype=container&comp=list&{token}") == 403
    assert _status("DELETE", with_token(f"{base}/a.txt", token)) == 403


def test_output_sas_can_create_and_write_only(client: BlobServiceClient, azurite: AzuriteInfo) -> None:
    container = client.create_container("sas-write")
    container.upload_blob("existing.txt", b"keep me")
    signer = SasSigner.for_client(client, timedelta(hours=1), azurite.account_key)
    base = f"{azurite.blob_endpoint}/sas-write"
    token = signer.container_write_token("sas-write")
    put = {"x-ms-blob-type": "BlockBlob"}
    assert _status("PUT", with_token(f"{base}/new_OUTPUT.txt", token), b"result", put) == 201
    assert _status("GET", with_token(f"{base}/existing.txt", token)) == 403
    assert _status("GET", f"{base}?restype=container&comp=list&{token}") == 403
    assert _status("DELETE", with_token(f"{base}/existing.txt", token)) == 403


def test_sas_expiry_is_bounded_by_the_requested_lifetime(client: BlobServiceClient, azurite: AzuriteInfo) -> None:
    signer = SasSigner.for_client(client, timedelta(minutes=30), azurite.account_key)
    fields = parse_qs(signer.container_write_token("whatever"))
    expiry = datetime.fromisoformat(fields["se"][0].replace("Z", "+00:00"))
    assert expiry <= datetime.now(UTC) + timedelta(minutes=31)
    assert fields["sp"] == ["cw"]
    assert parse_qs(signer.blob_read_token("c", "b"))["sp"] == ["r"]


def test_unchanged_files_are_not_uploaded_again(
    prefect_harness: None, settings: Settings, client: BlobServiceClient, tmp_path: Path
) -> None:
    (tmp_path / "one.txt").write_text("one one two\n")
    (tmp_path / "two.txt").write_text("three three three\n")
    items = resolve_inputs([str(tmp_path)])
    create_containers(settings, [settings.input_container])

    first = upload_files(settings, settings.input_container, items)
    assert sorted(first.uploaded) == ["one.txt", "two.txt"]
    container = client.get_container_client(settings.input_container)
    etags = {b.name: b.etag for b in container.list_blobs()}

    second = upload_files(settings, settings.input_container, items)  # the Prefect cache answers
    assert sorted(second.uploaded) == ["one.txt", "two.txt"]  # the cached report of the first upload
    assert {b.name: b.etag for b in container.list_blobs()} == etags  # nothing was written again

    (tmp_path / "two.txt").write_text("changed content\n")
    third = upload_files(settings, settings.input_container, resolve_inputs([str(tmp_path)]))
    assert third.uploaded == ["two.txt"]
    assert third.unchanged == ["one.txt"]
    assert container.download_blob("two.txt").readall() == b"changed content\n"


def test_a_recreated_container_gets_its_files_again(
    prefect_harness: None, settings: Settings, client: BlobServiceClient, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha\n")
    items = resolve_inputs([str(tmp_path)])
    create_containers(settings, [settings.input_container])
    assert upload_files(settings, settings.input_container, items).uploaded == ["a.txt"]
    delete_containers(settings, [settings.input_container])
    create_containers(settings, [settings.input_container])
    assert upload_files(settings, settings.input_container, items).uploaded == ["a.txt"]
    assert client.get_container_client(settings.input_container).download_blob("a.txt").readall() == b"alpha\n"


def test_downloads_are_verified_and_missing_outputs_reported(
    prefect_harness: None, settings: Settings, client: BlobServiceClient, tmp_path: Path
) -> None:
    create_containers(settings, [settings.output_container])
    container = client.get_container_client(settings.output_container)
    container.upload_blob("a_OUTPUT.txt", b"the:\t3\n")
    report = download_outputs(settings, settings.output_container, ["a_OUTPUT.txt", "gone_OUTPUT.txt"], tmp_path)
    assert [(d.blob_name, d.path.read_bytes()) for d in report.downloaded] == [("a_OUTPUT.txt", b"the:\t3\n")]
    assert list(report.missing) == ["gone_OUTPUT.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_OUTPUT.txt"]  # no partial file left behind
