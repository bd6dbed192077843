"""`batchpipe run` as a user types it: local services started and stopped, tutorial-style questions answered."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from batchpipe.services import PROJECT_ROOT

pytestmark = pytest.mark.integration


def _cli_env(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHPIPE_", "AZURE_", "PREFECT_"))}
    return keep | {
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "BATCHPIPE_POLL_INTERVAL": "0.2",
        "COLUMNS": "200",
    }


def _read_until(fd: int, pattern: str, seen: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, "".join(seen)):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {pattern!r}; output so far:\n{''.join(seen)[-2000:]}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"process ended before {pattern!r}:\n{''.join(seen)[-2000:]}"
            seen.append(chunk.decode("utf-8", "replace"))


def test_run_asks_like_the_tutorial_in_a_terminal_and_follows_the_answers(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchpipe.cli",
            "run",
            "--approve",
            "ask",
            "--input",
            str(PROJECT_ROOT / "samples"),
            "--output",
            str(tmp_path / "out"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=tmp_path,
        env=_cli_env(tmp_path / "prefect"),
        close_fds=True,
    )
    os.close(secondary)
    seen: list[str] = []
    try:
        _read_until(primary, r"Delete job\? \[Y/n\]", seen)
        os.write(primary, b"y\n")
        _read_until(primary, r"Delete pool\? \[Y/n\]", seen)
        os.write(primary, b"n\n")
        _read_until(primary, r"containers: deleted", seen)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    output = "".join(seen)
    # The questions come after the run says it waits (and how else to answer), not in the middle of the log.
    waiting = output.index("Waiting for approval to delete job")
    assert "answer the questions below in this terminal" in output[waiting:]
    assert output.index("Delete job? [Y/n]") > output.index("Pausing flow", waiting)
    assert "harbour_OUTPUT.txt" in output
    assert "pool batchpipe-pool: kept" in output
    assert re.search(r"Job batchpipe-\w+: deleted", output)
    assert sorted(p.name for p in (tmp_path / "out").glob("*/*")) == [
        "harbour_OUTPUT.txt",
        "observatory_OUTPUT.txt",
        "orchard_OUTPUT.txt",
    ]


def test_bad_input_fails_in_one_line_before_any_service_starts(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchpipe.cli",
            "run",
            "--approve",
            "yes",
            "--input",
            "empty.txt",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=tmp_path,
        env=_cli_env(tmp_path / "prefect"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: input file '{tmp_path / 'empty.txt'}' is empty: remove it or give it content"
    ]
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("command", [["run", "--approve", "yes"], ["plan", "--check"]])
def test_an_unsupported_image_on_the_azure_target_is_reported_once_at_once(
    command: list[str], pipeline_env: Any, tmp_path: Path
) -> None:
    """``--target azure`` against the local Batch service: the image is checked before anything else happens."""
    (tmp_path / "in.txt").write_text("one two two\n", "utf-8")
    env = _cli_env(tmp_path / "prefect") | {
        k: v for k, v in os.environ.items() if k.startswith("BATCHPIPE_") and k != "BATCHPIPE_TARGET"
    }
    result = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", *command, "--target", "azure", "--input", str(tmp_path / "in.txt")],
        cwd=tmp_path,
        env=env | {"BATCHPIPE_IMAGE": "debian:7"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert output.count("no supported Linux image matches") == 1, output
    [line] = [line for line in output.splitlines() if "no supported Linux image matches" in line]
    assert re.fullmatch(
        r"error: no supported Linux image matches BATCHPIPE_IMAGE='debian:7'; the service offers: "
        r"(\w+:[\d.]+, )*ubuntu:22\.04, (\w+:[\d.]+, )*ubuntu:24\.04 \(set BATCHPIPE_IMAGE to one of them\)",
        line,
    ), line
    assert "Traceback" not in output
    assert "Flow run" not in output  # reported before the flow (and Prefect's server) started
