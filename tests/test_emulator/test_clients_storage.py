"""Nodes reach storage like a real node: production blob hosts mapped to Azurite, proxies and CA bundles honoured."""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from azure.batch import models as batch_models
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

from batch_emulator.node import transfer
from batch_emulator.node.runner import run_task
from batch_emulator.node.spec import TaskRunSpec
from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from batchpipe.services import AzuriteInfo

PRODUCTION = "https://devstoreaccount1.blob.core.windows.net"


def test_production_blob_urls_map_to_the_endpoint_path_style() -> None:
    endpoint = transfer.check_storage_endpoint("http://127.0.0.1:10000/")
    assert endpoint == "http://127.0.0.1:10000"
    mapped = transfer.map_storage_url("https://acct.blob.core.windows.net/c/dir/b.txt?sv=1&sig=x", endpoint)
    assert mapped == "http://127.0.0.1:10000/acct/c/dir/b.txt?sv=1&sig=x"
    assert transfer.map_storage_url("https://example.com/c/b.txt", endpoint) == "https://example.com/c/b.txt"
    assert (
        transfer.map_storage_url("https://acct.blob.core.windows.net/c/b", None)
        == "https://acct.blob.core.windows.net/c/b"
    )
    outputs = [
        {
            "filePattern": "*.txt",
            "destination": {"container": {"containerUrl": "https://a.blob.core.windows.net/out?s"}},
        }
    ]
    shown = transfer.map_storage_urls(outputs, endpoint)
    assert shown[0]["destination"]["container"]["containerUrl"] == "http://127.0.0.1:10000/a/out?s"
    assert outputs[0]["destination"]["container"]["containerUrl"].startswith("https://a.blob")  # input unchanged


@pytest.mark.parametrize("bad", ["127.0.0.1:10000", "ftp://host", "http://host/?x=1"])
def test_a_bad_storage_endpoint_is_one_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not an http\(s\) URL such as http://127\.0\.0\.1:10000"):
        transfer.check_storage_endpoint(bad)


def test_cli_refuses_a_bad_storage_endpoint_in_one_line(helpers: Any) -> None:
    run = helpers.run_emulator("--storage-endpoint", "ftp://x")
    assert run.returncode == 2
    expected = "storage endpoint 'ftp://x' is not an http(s) URL such as http://127.0.0.1:10000 (Azurite)"
    assert run.stderr.strip().splitlines()[-1].endswith(f"--storage-endpoint: {expected}")


def test_ca_bundle_of_requests_is_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = transfer._tls_verification()
    assert isinstance(context, ssl.SSLContext)
    subjects = [dict(item[0] for item in cert["subject"]) for cert in context.get_ca_certs()]
    assert [subject["organizationName"] for subject in subjects] == [f"trustme v{trustme.__version__}"]


class _Answer(BaseHTTPRequestHandler):
    """Answers every GET with its server's ``reply`` and records the request target (absolute for a proxy)."""

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        body = self.server.reply  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(reply: bytes) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        server.reply = reply  # type: ignore[attr-defined]
        server.seen = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _spec(tmp_path: Path, url: str) -> TaskRunSpec:
    return TaskRunSpec(
        kind="job",
        account_name="emuaccount",
        pool_id="pool-1",
        node_id="node-1",
        node_root=tmp_path,
        job_id="job-1",
        task_id="task-1",
        command_line="/bin/cat in.txt",
        resource_files=[{"httpUrl": url, "filePath": "in.txt"}],
        environment_settings=[],
        output_files=[],
        max_wall_clock_seconds=30.0,
    )


def test_downloads_go_through_the_proxy_unless_no_proxy_names_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_server: Any
) -> None:
    proxy, storage = http_server(b"via proxy\n"), http_server(b"direct\n")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_port}")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setattr(transfer, "_client", None)  # a node reads its environment when it starts
    url = f"http://storage.test:{storage.server_port}/c/in.txt?sig=x"
    result = run_task(_spec(tmp_path / "a", url), threading.Event())
    assert result.result == "success", result.failure_info
    assert (result.task_dir / "stdout.txt").read_text() == "via proxy\n"
    assert proxy.seen == [url]  # the proxy got the absolute URL

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(transfer, "_client", None)
    direct = f"http://127.0.0.1:{storage.server_port}/c/in.txt"
    result = run_task(_spec(tmp_path / "b", direct), threading.Event())
    assert (result.task_dir / "stdout.txt").read_text() == "direct\n"
    assert storage.seen == ["/c/in.txt"]


@pytest.mark.integration
def test_production_urls_reach_azurite_with_the_storage_endpoint(azurite: AzuriteInfo, helpers: Any) -> None:
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = blobs.create_container(f"quickstart-{uuid.uuid4().hex[:8]}")
    try:
        container.upload_blob("taskdata0.txt", b"from a production URL\n")
        expiry = datetime.now(UTC) + timedelta(hours=1)
        name = container.container_name
        read = generate_blob_sas(
            azurite.account_name,
            name,
            "taskdata0.txt",
            account_key=azurite.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=expiry,
        )
        write = generate_container_sas(
            azurite.account_name,
            name,
            account_key=azurite.account_key,
            permission=ContainerSasPermissions(write=True, create=True),
            expiry=expiry,
        )
        endpoint = azurite.blob_endpoint.removesuffix(f"/{azurite.account_name}")
        config = EmulatorConfig(port=0, allocation_seconds=0.05, storage_endpoint=endpoint)
        with ThreadedEmulator(config) as service:
            client = helpers.make_client(service)
            client.create_pool(helpers.pool_options("storage-pool"))
            client.create_job(
                batch_models.BatchJobCreateOptions(
                    id="storage-job", pool_info=batch_models.BatchPoolInfo(pool_id="storage-pool")
                )
            )
            output = batch_models.OutputFile(
                file_pattern="result.txt",
                destination=batch_models.OutputFileDestination(
                    container=batch_models.OutputFileBlobContainerDestination(
                        container_url=f"{PRODUCTION}/{name}?{write}"
                    )
                ),
                upload_options=batch_models.OutputFileUploadConfiguration(upload_condition="taskcompletion"),
            )
            client.create_task(
                "storage-job",
                batch_models.BatchTaskCreateOptions(
                    id="t0",
                    command_line="/bin/sh -c 'cat taskdata0.txt | tee result.txt'",
                    resource_files=[
                        batch_models.ResourceFile(
                            http_url=f"{PRODUCTION}/{name}/taskdata0.txt?{read}", file_path="taskdata0.txt"
                        )
                    ],
                    output_files=[output],
                ),
            )
            task = helpers.wait_until(
                lambda: (t := client.get_task("storage-job", "t0")).state == "completed" and t, what="task t0"
            )
            assert task.execution_info.result == "success", task.execution_info.failure_info
            assert container.download_blob("result.txt").readall() == b"from a production URL\n"

            # A blob mount naming only the account (no blobEndpoint) and the service-log upload reach it too.
            mount = batch_models.AzureBlobFileSystemConfiguration(
                account_name=azurite.account_name,
                container_name=name,
                relative_mount_path="data",
                account_key=azurite.account_key,
            )
            mounted = helpers.pool_options(
                "mounted-pool",
                mount_configuration=[batch_models.MountConfiguration(azure_blob_file_system_configuration=mount)],
            )
            client.create_pool(mounted)
            node = helpers.wait_for_idle_nodes(client, "mounted-pool", 1)[0]
            assert not node.errors
            mounts = service.service.account.node_root("mounted-pool", node.id) / "fsmounts" / "data"
            assert (mounts / "taskdata0.txt").read_bytes() == b"from a production URL\n"
            logs = client.upload_node_logs(
                "mounted-pool",
                node.id,
                batch_models.UploadBatchServiceLogsOptions(
                    container_url=f"{PRODUCTION}/{name}?{write}", start_time=expiry - timedelta(hours=2)
                ),
            )
            assert container.get_blob_client(f"{logs.virtual_directory_name}/agent.log").exists()
    finally:
        container.delete_container()


def test_batchpipe_emulator_refuses_a_bad_storage_endpoint() -> None:
    from typer.testing import CliRunner

    from batchpipe.cli import app

    result = CliRunner().invoke(
        app, ["emulator", "--port", "0", "--storage-endpoint", "127.0.0.1:10000"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 2
    assert "is not an http(s) URL such as http://127.0.0.1:10000 (Azurite)" in result.output
