"""The command line: lists its commands and turns errors into one line."""

from __future__ import annotations

import subprocess
import sys

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
