"""Small helpers shared by the benchmarks: measured child processes, robust statistics, markdown tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True)
class Measurement:
    """One run of a child process."""

    wall_s: float
    cpu_s: float
    max_rss_kib: int
    returncode: int


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout_path: Path | None = None,
) -> Measurement:
    """Run a command and measure its wall time, CPU time and peak RSS.

    CPU time and peak RSS come from ``/usr/bin/time`` (GNU time), which forks the command from its own small
    process: Linux carries the pre-``exec`` image's high-water mark into ``ru_maxrss``, so a command forked straight
    from this (large) Python process would report at least this process's RSS. Without ``/usr/bin/time`` the
    numbers come from ``os.wait4`` on the child and RSS has that floor. Either way the usage covers the descendants
    the command waited for (a ``sh -c 'a | b'`` pipeline included); ``ru_maxrss`` is the largest single process.

    Args:
        argv: the command.
        cwd: its working directory.
        env: its environment (inherited when None).
        stdout_path: where its stdout goes (discarded when None); stderr is kept in ``<stdout_path>.err``.

    Returns:
        the measurement.
    """
    out_path = stdout_path or Path(os.devnull)
    err_path = Path(f"{stdout_path}.err") if stdout_path else Path(os.devnull)
    with tempfile.TemporaryDirectory(prefix="run-measured-") as scratch:
        usage_path = Path(scratch) / "usage"
        command = list(argv)
        if GNU_TIME.exists():
            command = [str(GNU_TIME), "--quiet", "-f", "%U %S %M %x", "-o", str(usage_path), *command]
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start = time.perf_counter()
            process = subprocess.Popen(command, cwd=cwd, env=None if env is None else dict(env), stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
        if GNU_TIME.exists():
            user, system, max_rss, exit_code = usage_path.read_text().split()[-4:]
            return Measurement(wall, float(user) + float(system), int(max_rss), int(exit_code))
    return Measurement(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, process.returncode)


@dataclass(frozen=True)
class Summary:
    """Median and range of repeated measurements."""

    median: float
    low: float
    high: float

    @property
    def spread_pct(self) -> float:
        """(max - min) / median, in percent."""
        return 100.0 * (self.high - self.low) / self.median if self.median else 0.0


def summarize(values: Sequence[float]) -> Summary:
    """Summarize repetitions by median, min and max.

    Args:
        values: at least one value.

    Returns:
        the summary.
    """
    return Summary(statistics.median(values), min(values), max(values))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render a GitHub markdown table.

    Args:
        headers: column titles.
        rows: cells, converted with ``str``.

    Returns:
        the table, one row per line.
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def available_memory_bytes() -> int | None:
    """Return MemAvailable from /proc/meminfo, or None where there is no such file."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def interleaved(
    cases: Mapping[str, Callable[[], T]],
    repeat: int,
    *,
    warmup: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[T]]:
    """Run every case ``repeat`` times, interleaved, a different case first each round (the machine is shared).

    Args:
        cases: name -> a function that runs the case once and returns its measurement.
        repeat: measured rounds.
        warmup: unmeasured rounds before them (results dropped).
        progress: called with a line after each run.

    Returns:
        name -> the measurements, in round order.
    """
    names = list(cases)
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_number in range(warmup + repeat):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            value = cases[name]()
            label = "warm-up" if round_number < warmup else f"round {round_number - warmup + 1}/{repeat}"
            if round_number >= warmup:
                results[name].append(value)
            if progress is not None:
                progress(f"{label}: {name} ({time.perf_counter() - started:.1f} s)")
    return results


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a live process, and of the children it has waited for (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / ticks
    children = (int(fields[13]) + int(fields[14])) / ticks
    return own, children


def process_memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a live process, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def format_number(value: float, digits: int = 2) -> str:
    """``12,345`` for large values, ``1.23`` for small ones."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"
