"""Uploading the output: against a real Azurite, and the retry rules against a scripted local HTTP server."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from batchpipe.services import AzuriteInfo
from node_app.errors import ExitCode, UploadError
from node_app.upload import RetryPolicy, blob_url, redact, upload_block_blob

SAS_VARIABLE = "OUTPUT_CONTAINER_SAS"
RunNodeApp = Callable[..., subprocess.CompletedProcess[str]]
ExpectError = Callable[[subprocess.CompletedProcess[str], int, str], None]


@pytest.fixture
def output_container(azurite: AzuriteInfo) -> Iterator[str]:
    """A fresh container in Azurite, deleted afterwards."""
    name = f"output-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_container(name)
        yield name
        service.delete_container(name)


def container_sas(azurite: AzuriteInfo, container: str, permission: ContainerSasPermissions) -> str:
    return generate_container_sas(
        azurite.account_name,
        container,
        account_key=azurite.account_key,
        permission=permission,
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def upload_args(azurite: AzuriteInfo, container: str) -> list[str]:
    return [
        *("--filepath", "taskdata1.txt", "--numwords", "3"),
        *("--storageaccount", azurite.account_name, "--storagecontainer", container),
        *("--blob-endpoint", azurite.blob_endpoint, "--sas-env", SAS_VARIABLE),
    ]


@pytest.mark.integration
@pytest.mark.parametrize("interpreter", ["current", "python3.8"])
def test_upload_with_a_write_only_sas(
    azurite: AzuriteInfo,
    output_container: str,
    run_node_app: RunNodeApp,
    task_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    interpreter: str,
) -> None:
    python = request.getfixturevalue("python38") if interpreter == "python3.8" else sys.executable
    (tmp_path / "taskdata1.txt").write_text("batch storage batch Batch, tasks—processing", encoding="utf-8")
    env = {**task_env, SAS_VARIABLE: container_sas(azurite, output_container, ContainerSasPermissions(write=True))}
    result = run_node_app(upload_args(azurite, output_container), env=env, python=python)
    assert result.returncode == 0, result.stderr
    assert "HTTP 201" in result.stdout
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        blob = service.get_blob_client(output_container, "taskdata1_OUTPUT.txt")
        assert blob.download_blob().readall() == (tmp_path / "taskdata1_OUTPUT.txt").read_bytes()
        properties = blob.get_blob_properties()
    assert properties.blob_type == "BlockBlob"
    assert properties.content_settings.content_type == "text/plain; charset=utf-8"


@pytest.mark.integration
def test_upload_with_the_tutorials_sastoken_argument(
    azurite: AzuriteInfo, output_container: str, run_node_app: RunNodeApp, tmp_path: Path
) -> None:
    (tmp_path / "taskdata1.txt").write_text("a b a", encoding="utf-8")
    sas = container_sas(azurite, output_container, ContainerSasPermissions(write=True, create=True))
    args = [arg for arg in upload_args(azurite, output_container) if arg not in ("--sas-env", SAS_VARIABLE)]
    result = run_node_app([*args, "--sastoken", "?" + sas])
    assert result.returncode == 0, result.stderr
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        names = [blob.name for blob in service.get_container_client(output_container).list_blobs()]
    assert names == ["taskdata1_OUTPUT.txt"]


@pytest.mark.integration
@pytest.mark.parametrize("interpreter", ["current", "python3.8"])
def test_read_only_sas_fails_with_status_and_error_code_but_no_signature(
    azurite: AzuriteInfo,
    output_container: str,
    run_node_app: RunNodeApp,
    expect_error: ExpectError,
    task_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    interpreter: str,
) -> None:
    python = request.getfixturevalue("python38") if interpreter == "python3.8" else sys.executable
    (tmp_path / "taskdata1.txt").write_text("a b a", encoding="utf-8")
    sas = container_sas(azurite, output_container, ContainerSasPermissions(read=True, list=True))
    result = run_node_app(upload_args(azurite, output_container), env={**task_env, SAS_VARIABLE: sas}, python=python)
    expect_error(result, ExitCode.UPLOAD_FAILED, "HTTP 403 AuthorizationPermissionMismatch")
    assert "after 1 attempt(s)" in result.stderr
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    assert "sig=" not in result.stderr
    assert signature not in result.stderr


@pytest.mark.integration
def test_missing_container_fails_without_retrying(
    azurite: AzuriteInfo, run_node_app: RunNodeApp, expect_error: ExpectError, task_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "taskdata1.txt").write_text("a b a", encoding="utf-8")
    sas = container_sas(azurite, "nosuchcontainer", ContainerSasPermissions(write=True))
    result = run_node_app(upload_args(azurite, "nosuchcontainer"), env={**task_env, SAS_VARIABLE: sas})
    expect_error(result, ExitCode.UPLOAD_FAILED, "HTTP 404 ContainerNotFound")


class ScriptedStorage(http.server.ThreadingHTTPServer):
    """A local HTTP server answering PUTs from a script of (status, headers, body); records what it received."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/devstoreaccount1"


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    server: ScriptedStorage

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        status, headers, payload = self.server.script.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def scripted_storage(request: pytest.FixtureRequest) -> Iterator[ScriptedStorage]:
    server = ScriptedStorage(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _xml_error(code: str) -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>m</Message></Error>'.encode()


SAS = "sv=2023-11-03&sr=c&sp=w&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
FAST = RetryPolicy(max_attempts=4, base_delay=0.4, max_delay=10.0, timeout=10.0)


@pytest.mark.parametrize(
    "scripted_storage",
    [
        [
            (503, {"Retry-After": "3", "x-ms-error-code": "ServerBusy"}, b""),
            (500, {}, _xml_error("InternalError")),
            (201, {"x-ms-request-id": "req-1"}, b""),
        ]
    ],
    indirect=True,
)
def test_throttling_and_server_errors_are_retried_honouring_retry_after(scripted_storage: ScriptedStorage) -> None:
    delays: list[float] = []
    url = blob_url(scripted_storage.endpoint, "output", "task data_OUTPUT.txt")
    result = upload_block_blob(url, "?" + SAS, b"content", policy=FAST, sleep=delays.append)
    assert (result.status, result.attempts, result.request_id) == (201, 3, "req-1")
    assert delays[0] >= 3.0  # Retry-After wins over the shorter backoff
    assert 0.4 <= delays[1] <= 0.8  # second backoff: ceiling 0.8 s, equal jitter
    path, headers, body = scripted_storage.requests[-1]
    assert path == f"/devstoreaccount1/output/task%20data_OUTPUT.txt?{SAS}"
    assert headers["x-ms-blob-type"] == "BlockBlob"
    assert headers["content-length"] == "7"
    assert body == b"content"


@pytest.mark.parametrize("scripted_storage", [[(403, {}, _xml_error("AuthenticationFailed"))]], indirect=True)
def test_client_errors_are_not_retried_and_name_the_code_from_the_body(scripted_storage: ScriptedStorage) -> None:
    delays: list[float] = []
    url = blob_url(scripted_storage.endpoint, "output", "x.txt")
    with pytest.raises(UploadError) as raised:
        upload_block_blob(url, SAS, b"x", policy=FAST, sleep=delays.append)
    message = str(raised.value)
    assert "HTTP 403 AuthenticationFailed" in message
    assert "after 1 attempt(s)" in message
    assert "sig=" not in message
    assert delays == []


@pytest.mark.parametrize(
    "scripted_storage", [[(503, {"x-ms-error-code": "ServerBusy", "x-ms-request-id": "r9"}, b"")] * 4], indirect=True
)
def test_retries_give_up_after_max_attempts(scripted_storage: ScriptedStorage) -> None:
    delays: list[float] = []
    url = blob_url(scripted_storage.endpoint, "output", "x.txt")
    with pytest.raises(UploadError, match=r"after 4 attempt\(s\): HTTP 503 ServerBusy \(x-ms-request-id r9\)"):
        upload_block_blob(url, SAS, b"x", policy=FAST, sleep=delays.append)
    assert len(delays) == 3
    assert len(scripted_storage.requests) == 4


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delays: list[float] = []
    url = blob_url(f"http://127.0.0.1:{port}/devstoreaccount1", "output", "x.txt")
    with pytest.raises(UploadError, match="after 3 attempt\\(s\\): connection error") as raised:
        upload_block_blob(url, SAS, b"x", policy=FAST._replace(max_attempts=3), sleep=delays.append)
    assert len(delays) == 2
    assert "sig=" not in str(raised.value)


def test_redact_masks_signatures_and_the_whole_secret() -> None:
    assert redact("GET /c/b?sv=1&sig=abc%3D&se=2") == "GET /c/b?sv=1&sig=<redacted>&se=2"
    assert redact("token sv=1&sp=w in text", secret="sv=1&sp=w") == "token <SAS> in text"
