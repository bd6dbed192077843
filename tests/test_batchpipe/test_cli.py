"""The command line: lists its commands and turns errors into one line."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from batchpipe.cli import app


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "emulator", "approve", "plan", "serve", "pools"):
        assert command in result.output


def test_invalid_setting_is_one_line_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", "run"],
        env={"BATCHPIPE_NODE_COUNT": "zero", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BATCHPIPE_NODE_COUNT" in result.stderr


def test_emulator_passes_the_container_runtime_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import batch_emulator.server

    started: list[Any] = []
    monkeypatch.setattr(batch_emulator.server, "run_forever", lambda config, **_: started.append(config))
    result = CliRunner().invoke(app, ["emulator", "--port", "0", "--container-runtime", "docker"])
    assert result.exit_code == 0, result.output
    assert started[0].container_runtime == "docker"
