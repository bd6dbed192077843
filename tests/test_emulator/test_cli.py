"""``python -m batch_emulator``: ready file, the listening line, SIGTERM, and the loopback guard."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME


def test_runs_in_the_foreground_and_stops_on_sigterm(tmp_path: Path, helpers: Any) -> None:
    ready = tmp_path / "ready"
    command = [sys.executable, "-m", "batch_emulator", "--port", "0", "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        url = helpers.wait_until(lambda: ready.exists() and ready.read_text().strip(), what="ready file")
        assert url.startswith("http://127.0.0.1:")
        with BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)) as client:
            assert list(client.list_pools()) == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"Local Azure Batch service listening on {url} (account localbatch)"
        assert (tmp_path / "data" / "accounts" / "localbatch" / "batch.sqlite3").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_refuses_a_remote_interface_without_the_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batch_emulator", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr


def test_rejects_a_bad_fault_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batch_emulator", "--faults", "explode=1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown fault" in result.stderr
