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


@pytest.mark.integration
def test_services_die_with_a_killed_parent(tmp_path: Path) -> None:
    """A SIGKILLed run cannot stop its services itself; the kernel does it for us."""
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "azurite.pid"
    script = (
        "import sys, pathlib, time\n"
        "from batchpipe.services import start_azurite\n"
        f"p = start_azurite(pathlib.Path({str(tmp_path / 'loc')!r}))\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid))\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert parent.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling for the file the child writes
    azurite_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(azurite_pid) and not _is_zombie(azurite_pid):
        assert time.monotonic() < deadline, "Azurite outlived its killed parent"
        time.sleep(0.05)  # polling the process table


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
