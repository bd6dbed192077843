"""The local service launchers start real processes on loopback and leave nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from batchpipe.errors import ServiceStartError
from batchpipe.services import AzuriteInfo, running, start_azurite


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once reaped, which stop() does.
    return True


@pytest.mark.integration
def test_azurite_serves_blobs_on_loopback_and_stops_by_pid(tmp_path: Path) -> None:
    process = start_azurite(tmp_path / "azurite")
    with running(process):
        assert process.url.startswith("http://127.0.0.1:")
        info = AzuriteInfo(blob_endpoint=process.url)
        client = BlobServiceClient.from_connection_string(info.connection_string)
        client.create_container("probe")
        client.get_blob_client("probe", "a.txt").upload_blob(b"hello")
        assert client.get_blob_client("probe", "a.txt").download_blob().readall() == b"hello"
    assert process.process.poll() is not None
    assert not _alive(process.pid)


@pytest.mark.integration
def test_azurite_keeps_data_across_restart_on_the_same_location(tmp_path: Path) -> None:
    location = tmp_path / "azurite"
    first = start_azurite(location)
    with running(first):
        client = BlobServiceClient.from_connection_string(AzuriteInfo(first.url).connection_string)
        client.create_container("kept")
        client.get_blob_client("kept", "x").upload_blob(b"data")
    second = start_azurite(location)
    with running(second):
        client = BlobServiceClient.from_connection_string(AzuriteInfo(second.url).connection_string)
        assert client.get_blob_client("kept", "x").download_blob().readall() == b"data"


def test_missing_azurite_install_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("batchpipe.services.PROJECT_ROOT", tmp_path)
    with pytest.raises(ServiceStartError, match="npm ci"):
        start_azurite(tmp_path / "loc")
