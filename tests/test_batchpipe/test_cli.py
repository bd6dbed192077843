"""The command line: lists its commands and turns errors into one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
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


def test_a_misspelled_variable_in_dot_env_is_warned_about_once_with_the_closest_name(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BATCHPIPE_NUM_WORDS=5\nBATCHPIPE_NODE_COUNTS=2\nOTHER_TOOL=1\n", "utf-8")
    (tmp_path / "in.txt").write_text("a b c\n", "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", "plan", "--input", "in.txt"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "BATCHPIPE_POLL_INTERVALL": "5"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: BATCHPIPE_POLL_INTERVALL is not a batchpipe setting and is ignored "
        "(did you mean BATCHPIPE_POLL_INTERVAL?)",
        "warning: BATCHPIPE_NODE_COUNTS in .env is not a batchpipe setting and is ignored "
        "(did you mean BATCHPIPE_NODE_COUNT?)",
    ]
    assert "top 5 words each" in result.stdout  # the file's valid entry is read
    assert "1 x standard_d2s_v3" in result.stdout  # the misspelled one is not
