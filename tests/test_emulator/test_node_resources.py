"""Resource files are downloaded into the task working directory from a real Azurite with SAS URLs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from azure.storage.blob import (
    BlobSasPermissions,
    ContainerClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

from batch_emulator.node.resources import check_file_path
from batchpipe.services import AzuriteInfo
from tests.test_emulator.node_runs import job_task, run

pytestmark = pytest.mark.integration


def expiry() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def blob_read_url(azurite: AzuriteInfo, container: ContainerClient, name: str) -> str:
    sas = generate_blob_sas(
        azurite.account_name,
        container.container_name,
        name,
        account_key=azurite.account_key,
        permission=BlobSasPermissions(read=True),
        expiry=expiry(),
    )
    return f"{container.url}/{name}?{sas}"


def container_url(azurite: AzuriteInfo, container: ContainerClient, permission: ContainerSasPermissions) -> str:
    sas = generate_container_sas(
        azurite.account_name,
        container.container_name,
        account_key=azurite.account_key,
        permission=permission,
        expiry=expiry(),
    )
    return f"{container.url}?{sas}"


def test_http_url_with_read_only_blob_sas(tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient) -> None:
    container.upload_blob("data/input.txt", "héllo from azurite\n".encode())
    url = blob_read_url(azurite, container, "data/input.txt")
    spec = job_task(
        tmp_path,
        "/bin/cat in/copy.txt",
        resource_files=[{"httpUrl": url, "filePath": "in/copy.txt", "fileMode": "0640"}],
    )
    result = run(spec)

    assert result.result == "success", result.failure_info
    downloaded = result.task_dir / "wd" / "in" / "copy.txt"
    assert downloaded.read_text(encoding="utf-8") == "héllo from azurite\n"
    assert downloaded.stat().st_mode & 0o777 == 0o640
    assert (result.task_dir / "stdout.txt").read_text(encoding="utf-8") == "héllo from azurite\n"


def test_default_file_mode_is_0770(tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient) -> None:
    container.upload_blob("tool.sh", b"#!/bin/sh\necho tool\n")
    resource = {"httpUrl": blob_read_url(azurite, container, "tool.sh"), "filePath": "tool.sh"}
    result = run(job_task(tmp_path, "./tool.sh", resource_files=[resource]))

    assert result.result == "success", result.failure_info
    assert (result.task_dir / "wd" / "tool.sh").stat().st_mode & 0o777 == 0o770
    assert (result.task_dir / "stdout.txt").read_text() == "tool\n"


def test_storage_container_url_with_blob_prefix_keeps_blob_names(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    for name in ("batch/a.txt", "batch/sub/b.txt", "other/c.txt"):
        container.upload_blob(name, name.encode())
    url = container_url(azurite, container, ContainerSasPermissions(read=True, list=True))
    result = run(
        job_task(tmp_path, resource_files=[{"storageContainerUrl": url, "blobPrefix": "batch/", "filePath": "inputs"}])
    )

    assert result.result == "success", result.failure_info
    wd = result.task_dir / "wd"
    assert (wd / "inputs" / "batch" / "a.txt").read_text() == "batch/a.txt"
    assert (wd / "inputs" / "batch" / "sub" / "b.txt").read_text() == "batch/sub/b.txt"
    assert not (wd / "inputs" / "other").exists()


def test_storage_container_url_without_file_path_downloads_into_wd(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    container.upload_blob("top.txt", b"top")
    url = container_url(azurite, container, ContainerSasPermissions(read=True, list=True))
    result = run(job_task(tmp_path, resource_files=[{"storageContainerUrl": url}]))

    assert result.result == "success", result.failure_info
    assert (result.task_dir / "wd" / "top.txt").read_bytes() == b"top"


def test_bad_signature_fails_clearly_without_revealing_it(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    container.upload_blob("secret.txt", b"x")
    url = blob_read_url(azurite, container, "secret.txt")
    signature = url.split("sig=")[1].split("&")[0]
    forged = url.replace(f"sig={signature}", "sig=AAAA" + signature[4:])
    result = run(
        job_task(tmp_path, "/bin/bash -c 'touch ran'", resource_files=[{"httpUrl": forged, "filePath": "secret.txt"}])
    )

    assert result.result == "failure"
    assert result.exit_code is None
    info = result.failure_info
    assert info is not None
    assert info["category"] == "usererror"
    assert info["code"] == "BlobAccessDenied"
    assert "secret.txt" in info["message"]
    assert "403" in info["message"]
    text = repr(info)
    assert signature[4:] not in text
    assert "sig=REDACTED" in text
    assert not (result.task_dir / "wd" / "ran").exists()


def test_container_listing_without_list_permission_is_access_denied(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    url = container_url(azurite, container, ContainerSasPermissions(read=True))
    result = run(job_task(tmp_path, resource_files=[{"storageContainerUrl": url}]))

    assert result.failure_info is not None
    assert result.failure_info["code"] == "ResourceContainerAccessDenied"
    assert url.split("sig=")[1].split("&")[0] not in repr(result.failure_info)


def test_missing_blob_is_blob_not_found(tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient) -> None:
    url = blob_read_url(azurite, container, "absent.txt")
    result = run(job_task(tmp_path, resource_files=[{"httpUrl": url, "filePath": "absent.txt"}]))

    assert result.failure_info is not None
    assert result.failure_info["code"] == "BlobNotFound"
    assert {"name": "FilePath", "value": "absent.txt"} in result.failure_info["details"]


@pytest.mark.parametrize("file_path", ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt"])
def test_file_path_escaping_the_working_dir_is_refused(tmp_path: Path, file_path: str) -> None:
    result = run(
        job_task(tmp_path, resource_files=[{"httpUrl": "http://127.0.0.1:9/never-fetched", "filePath": file_path}])
    )

    assert result.result == "failure"
    assert result.failure_info is not None
    assert result.failure_info["category"] == "usererror"
    assert result.failure_info["code"] == "ResourceFileCreateFailed"
    assert not list(tmp_path.rglob("escape.txt"))
    assert check_file_path(file_path) is not None


def test_file_path_checks_accept_inner_dot_dot() -> None:
    assert check_file_path("a/../b.txt") is None
    assert check_file_path("./dir/file") is None


def test_auto_storage_container_is_not_supported_locally(tmp_path: Path) -> None:
    result = run(job_task(tmp_path, resource_files=[{"autoStorageContainerName": "inputs"}]))

    assert result.failure_info is not None
    assert result.failure_info["category"] == "usererror"
    assert "not supported locally" in result.failure_info["message"]


class FlakyBlobHandler(BaseHTTPRequestHandler):
    """Answers 503 to the first request for a path, then the content."""

    seen: set[str] = set()

    def do_GET(self) -> None:
        if self.path not in self.seen:
            self.seen.add(self.path)
            self.send_response(503)
            self.send_header("x-ms-error-code", "ServerBusy")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"after a retry\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def flaky_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyBlobHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_server_busy_is_retried(tmp_path: Path, flaky_server: str) -> None:
    url = f"{flaky_server}/container/blob-{uuid.uuid4().hex}?sv=2021-08-06&sig=abc"
    result = run(job_task(tmp_path, resource_files=[{"httpUrl": url, "filePath": "retried.txt"}]))

    assert result.result == "success", result.failure_info
    assert (result.task_dir / "wd" / "retried.txt").read_text() == "after a retry\n"


def test_unreachable_storage_is_a_server_error(tmp_path: Path) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), FlakyBlobHandler)
    port = closed.server_address[1]
    closed.server_close()
    result = run(
        job_task(tmp_path, resource_files=[{"httpUrl": f"http://127.0.0.1:{port}/c/b?sig=topsecret", "filePath": "b"}])
    )

    assert result.failure_info is not None
    assert result.failure_info["category"] == "servererror"
    assert result.failure_info["code"] == "BlobDownloadMiscError"
    assert "topsecret" not in repr(result.failure_info)


def test_spec_with_several_resource_files_downloads_all(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    container.upload_blob("one.txt", b"1")
    container.upload_blob("two.txt", b"2")
    files = [{"httpUrl": blob_read_url(azurite, container, n), "filePath": n} for n in ("one.txt", "two.txt")]
    result = run(job_task(tmp_path, "/bin/cat one.txt two.txt", resource_files=files))

    assert (result.task_dir / "stdout.txt").read_text() == "12"
