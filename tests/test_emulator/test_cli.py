"""``python -m batch_emulator``: ready file, the listening line, SIGTERM, and the loopback guard."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.credentials import AzureNamedKeyCredential
from typer.testing import CliRunner

from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from batchpipe.cli import app


@contextmanager
def foreground(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    """Run the service in the foreground; it must stop with exit code 0 on SIGTERM (killed if the test fails)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield process
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_runs_in_the_foreground_and_stops_on_sigterm(tmp_path: Path, helpers: Any) -> None:
    ready = tmp_path / "ready"
    command = [sys.executable, "-m", "batch_emulator", "--port", "0", "--data-dir", str(tmp_path / "data")]
    with foreground([*command, "--ready-file", str(ready)]) as process:
        url = helpers.wait_until(lambda: ready.exists() and ready.read_text().strip(), what="ready file")
        assert url.startswith("http://127.0.0.1:")
        with BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)) as client:
            assert list(client.list_pools()) == []
        assert process.stdout is not None
        line = process.stdout.readline().strip()
    assert line == f"Local Azure Batch service listening on {url} (account localbatch)"
    assert (tmp_path / "data" / "accounts" / "localbatch" / "batch.sqlite3").exists()


def test_refuses_a_remote_interface_without_the_flag(tmp_path: Path, helpers: Any) -> None:
    result = helpers.run_emulator("--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr


def test_rejects_a_bad_fault_spec(helpers: Any) -> None:
    result = helpers.run_emulator("--faults", "explode=1")
    assert result.returncode == 2
    assert "unknown fault" in result.stderr


def test_time_scale_speeds_up_autoscale_evaluation(tmp_path: Path, helpers: Any) -> None:
    command = [sys.executable, "-m", "batchpipe.cli", "emulator", "--port", "0", "--data-dir", str(tmp_path)]
    with foreground([*command, "--time-scale", "600"]) as process:
        assert process.stdout is not None
        url = process.stdout.readline().split(" on ")[1].split(" ")[0]
        with BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)) as client:
            client.create_pool(helpers.pool_options("ticking", nodes=0))
            helpers.wait_until(lambda: client.get_pool("ticking").allocation_state == "steady", what="steady pool")
            # Every evaluation asks for one node more; at 600x a 5-minute interval lasts half a second.
            formula = "$TargetDedicatedNodes = $TargetDedicatedNodes + 1;"
            options = batch_models.BatchPoolEnableAutoScaleOptions(
                auto_scale_formula=formula, auto_scale_evaluation_interval=timedelta(minutes=5)
            )
            client.enable_pool_auto_scale("ticking", options)
            helpers.wait_until(lambda: client.get_pool("ticking").target_dedicated_nodes >= 3, what="3 evaluations")


def test_rejects_a_time_scale_that_is_not_positive(helpers: Any) -> None:
    result = helpers.run_emulator("--time-scale", "0")
    assert result.returncode == 2
    assert "--time-scale: time_scale must be a positive number, not 0.0" in result.stderr
    refused = CliRunner().invoke(app, ["emulator", "--time-scale", "-1"])
    assert refused.exit_code == 2
    assert "must be a positive number, not -1.0" in refused.output
