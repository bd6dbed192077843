"""`batchpipe run` as a user types it: local services started and stopped, tutorial-style questions answered."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
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


#: The pseudo-terminal's size, which the terminal emulator shares.
COLUMNS, ROWS = 200, 60
#: What rich draws a progress bar with; in any other line than the bar's own, a copy of the bar glued to a log line.
BAR_GLYPHS = ("━", "╸", "╺")
BAR_LINE = re.compile(r"tasks [━╸╺ ]+ \d+/\d+ (running \d+, failed \d+)? \d+:\d\d:\d\d")
TABLE_EDGES = ("┏", "┃", "┡", "│", "└")  # the summary table's borders are drawn with ━ too


def _has_bar(line: str) -> bool:
    return any(glyph in line for glyph in BAR_GLYPHS) and not line.lstrip().startswith(TABLE_EDGES)


LOG_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ +\| ")


class _Terminal:
    """The CLI's pseudo-terminal as a user sees it: its output through a terminal emulator (pyte), the screen
    checked whenever the output pauses (a whole frame drawn): at most one progress bar, a whole one, on the bottom
    line, and no piece of it in any other line."""

    def __init__(self, fd: int) -> None:
        import pyte

        self.fd = fd
        self.seen: list[str] = []
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.bars_live = 0  # screens showing the bar at the bottom with log lines above it
        self.problems: list[str] = []

    def lines(self) -> list[str]:
        """The screen's lines down to the last one with text (trailing spaces dropped)."""
        lines = [line.rstrip() for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def read_until(self, pattern: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, "".join(self.seen)):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {pattern!r}; output so far:\n{''.join(self.seen)[-2000:]}"
            assert self._read(remaining), f"process ended before {pattern!r}:\n{''.join(self.seen)[-2000:]}"

    def read_to_end(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self._read(max(deadline - time.monotonic(), 0)):
            assert time.monotonic() < deadline, "the terminal was not closed"

    def _read(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout``), then check the screen once the output pauses."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the child closed the terminal
            chunk = b""
        if not chunk:
            return False
        self.seen.append(chunk.decode("utf-8", "replace"))
        self.stream.feed(chunk)
        if not select.select([self.fd], [], [], 0.05)[0]:
            self._check()
        return True

    def _check(self) -> None:
        lines = self.lines()
        bars = [i for i, line in enumerate(lines) if _has_bar(line)]
        self.problems += [f"a piece of the bar in: {lines[i]!r}" for i in bars if not BAR_LINE.fullmatch(lines[i])]
        if len(bars) > 1:
            self.problems.append(f"{len(bars)} bars on the screen")
        if bars and bars[-1] != len(lines) - 1:
            self.problems.append(f"the bar is not on the bottom line: {lines[bars[-1] :]!r}")
        if bars and any(LOG_LINE.match(line) for line in lines[: bars[0]]):
            self.bars_live += 1


def test_run_asks_like_the_tutorial_in_a_terminal_and_follows_the_answers(tmp_path: Path) -> None:
    """The whole run in a terminal: the questions after the pause is logged, one live bar below the log lines."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
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
        env=_cli_env(tmp_path / "prefect") | {"TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(secondary)
    terminal = _Terminal(primary)
    try:
        terminal.read_until(r"Delete job\? \[Y/n\]")
        asking = terminal.lines()
        os.write(primary, b"y\n")
        terminal.read_until(r"Delete pool\? \[Y/n\]")
        os.write(primary, b"n\n")
        terminal.read_until(r"containers: deleted")
        assert process.wait(60) == 0
        terminal.read_to_end()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    output = "".join(terminal.seen)
    # The questions come after the run says it waits (and how else to answer), not in the middle of the log.
    waiting = output.index("Waiting for approval to delete job")
    assert "answer the questions below in this terminal" in output[waiting:]
    assert output.index("Delete job? [Y/n]") > output.index("Pausing flow", waiting)
    # On the screen: the question alone on the bottom line, below the pause's log line, no bar left over.
    assert asking[-1] == "Delete job? [Y/n]", asking[-5:]
    assert any("Pausing flow" in line for line in asking[-8:-1]), asking[-8:]
    assert not [line for line in asking if _has_bar(line)]
    # While the tasks ran: one whole bar on the bottom line with the log lines above it, and never a copy elsewhere.
    assert terminal.bars_live > 0, output[-3000:]
    assert terminal.problems == [], "\n".join(terminal.problems)
    final = terminal.lines()
    assert not [line for line in final if _has_bar(line)]  # it went with the monitoring
    assert any(LOG_LINE.match(line) for line in final)
    assert re.search(r"Job batchpipe-\w+: deleted; pool batchpipe-pool: kept; containers: deleted", "\n".join(final))
    assert "harbour_OUTPUT.txt" in output
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
