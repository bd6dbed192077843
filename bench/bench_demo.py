"""Benchmark 1: the embedded demo, ``batchpipe run --approve yes`` on the three samples, warm.

Each run is the command as a user types it, in a working directory of its own (so ``.batchpipe/`` and
``.prefect-home/`` persist between its runs, as they do for a user): from the command's start to its exit, after
which the three outputs must be on disk with the top words the node application's counting gives for the samples
(checked by the harness, outputs removed before every run). One unmeasured warm-up round first: the numbers are
second-and-later runs. Cases, interleaved:

* **batchpipe run** as shipped: Prefect in ephemeral mode (a temporary Prefect server inside the command);
* **batchpipe run, Prefect server running**: the same with ``PREFECT_API_URL`` pointing at a local Prefect server
  that was already up (what ``batchpipe stack`` gives);
* **plain SDK script** (baseline): ``bench/plain_sdk_pipeline.py --local-stack``, the same steps with the SDKs and
  the same local services, no Prefect;
* **local services alone**: Azurite and the local Batch service started and stopped with
  ``batchpipe.services.start_azurite`` / ``start_batch_emulator`` (what every run above pays inside its time).

The start-up phases of ``batchpipe run`` come from the timestamps of its own log lines: command start → "Starting
temporary server" (services started, modules imported) → "Beginning flow run" (Prefect ready) → the flow's "Finished
in state" → exit.
"""

from __future__ import annotations

import re
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._common import interleaved, markdown_table, run_measured
from bench._context import PROJECT_ROOT, Context
from bench._results import BenchResult, Row, ratio_text

GOAL_SECONDS = 10.0
SAMPLES = PROJECT_ROOT / "samples"
BATCHPIPE = Path(sys.executable).with_name("batchpipe")
_STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) \| ")


def expected_outputs(num_words: int = 3) -> dict[str, list[str]]:
    """Output file name -> its expected ``word:<TAB>count`` lines, from the node application's own counting."""
    from node_app.counting import count_words, top_words
    from node_app.output import output_file_name

    expected = {}
    for path in sorted(SAMPLES.iterdir()):
        with path.open("rb") as stream:
            top = top_words(count_words(stream), num_words)
        expected[output_file_name(path.name)] = [f"{word}:\t{count}" for word, count in top]
    return expected


def verify_outputs(output_root: Path, expected: dict[str, list[str]]) -> None:
    """Raise unless every expected output file is on disk with the expected top-word lines."""
    for name, lines in expected.items():
        found = list(output_root.glob(f"*/{name}"))
        if len(found) != 1:
            raise RuntimeError(f"output {name} not found under {output_root}")
        text = found[0].read_text("utf-8").splitlines()
        if text[2 : 2 + len(lines)] != lines:
            raise RuntimeError(f"output {found[0]} has {text[2 : 2 + len(lines)]}, expected {lines}")


def _log_times(log: Path, launched: float) -> dict[str, float]:
    """Seconds from launch to the log lines that mark the phases (Prefect's HH:MM:SS.mmm local timestamps)."""
    marks = {
        "prefect_starting": "Starting temporary server",
        "flow_begins": "Beginning flow run",
        "flow_finished": "Finished in state",
    }
    start = datetime.fromtimestamp(launched)
    found: dict[str, float] = {}
    for line in log.read_text("utf-8", "replace").splitlines():
        match = _STAMP.match(line)
        if not match:
            continue
        hours, minutes, seconds, millis = (int(group) for group in match.groups())
        stamp = start.replace(hour=hours, minute=minutes, second=seconds, microsecond=millis * 1000)
        for key, text in marks.items():
            if text in line and (key != "flow_finished" or "Flow run" in line):
                found[key] = (stamp - start).total_seconds()
    return found


class DemoCases:
    """The demo's cases, each in its own working directory."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.expected = expected_outputs()

    def batchpipe_run(self, with_server: bool) -> dict[str, Any]:
        """``batchpipe run --approve yes`` once; its wall time, CPU, peak RSS and phases."""
        ctx = self.ctx
        cwd = ctx.workdir / ("demo-server" if with_server else "demo-ephemeral")
        cwd.mkdir(exist_ok=True)
        shutil.rmtree(cwd / "outputs", ignore_errors=True)
        env = ctx.base_environment()
        if with_server:
            env.update(ctx.prefect_server().client_environment())
        launched = time.time()
        measurement = run_measured(
            [str(BATCHPIPE), "run", "--approve", "yes"], cwd=cwd, env=env, stdout_path=cwd / "run.log"
        )
        if measurement.returncode != 0:
            tail = (cwd / "run.log.err").read_text("utf-8", "replace")[-800:]
            raise RuntimeError(f"batchpipe run failed with exit code {measurement.returncode}: {tail}")
        verify_outputs(cwd / "outputs", self.expected)
        # Prefect's log goes to stderr (the .err file), the summary table to stdout.
        phases = _log_times(cwd / "run.log.err", launched)
        return {
            "wall_s": measurement.wall_s,
            "cpu_s": measurement.cpu_s,
            "rss_mib": measurement.max_rss_kib / 1024,
            **phases,
        }

    def plain(self) -> dict[str, Any]:
        """The plain SDK script with its own local services, once."""
        cwd = self.ctx.workdir / "demo-plain"
        cwd.mkdir(exist_ok=True)
        shutil.rmtree(cwd / "outputs", ignore_errors=True)
        argv = [sys.executable, str(PROJECT_ROOT / "bench" / "plain_sdk_pipeline.py"), str(SAMPLES)]
        argv += ["--output-dir", "outputs", "--local-stack", str(cwd / ".batchpipe")]
        measurement = run_measured(argv, cwd=cwd, env=self.ctx.base_environment(), stdout_path=cwd / "run.log")
        if measurement.returncode != 0:
            tail = (cwd / "run.log.err").read_text("utf-8", "replace")[-800:]
            raise RuntimeError(f"plain SDK script failed with exit code {measurement.returncode}: {tail}")
        verify_outputs(cwd / "outputs", self.expected)
        return {"wall_s": measurement.wall_s, "cpu_s": measurement.cpu_s, "rss_mib": measurement.max_rss_kib / 1024}

    def services_alone(self) -> dict[str, Any]:
        """Start Azurite, then the local Batch service, then stop both (their state dir is kept between runs)."""
        from batchpipe.services import start_azurite, start_batch_emulator

        state = self.ctx.workdir / "demo-services" / ".batchpipe"
        started = time.perf_counter()
        azurite = start_azurite(state / "azurite")
        azurite_up = time.perf_counter()
        try:
            batch = start_batch_emulator(state / "batch")
            batch_up = time.perf_counter()
            batch.stop()
        finally:
            azurite.stop()
        stopped = time.perf_counter()
        return {
            "azurite_start_s": azurite_up - started,
            "batch_start_s": batch_up - azurite_up,
            "start_s": batch_up - started,
            "stop_s": stopped - batch_up,
            "wall_s": stopped - started,
        }


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (3 rounds after a warm-up; quick mode: 1 round, no warm-up, no ephemeral case)."""
    started = time.perf_counter()
    reps = ctx.reps(1, 3)
    warmup = 0 if ctx.quick else 1
    demo = DemoCases(ctx)
    cases: dict[str, Any] = {
        "batchpipe run (ephemeral Prefect, as shipped)": lambda: demo.batchpipe_run(with_server=False),
        "batchpipe run, Prefect server running": lambda: demo.batchpipe_run(with_server=True),
        "plain SDK script + local services": demo.plain,
        "local services alone: start + stop": demo.services_alone,
    }
    if ctx.quick:
        # A cold ephemeral run migrates a fresh Prefect database (~15 s): beyond a one-minute smoke run.
        del cases["batchpipe run (ephemeral Prefect, as shipped)"]
    ctx.prefect_server()
    results = interleaved(cases, reps, warmup=warmup, progress=ctx.log)
    return _result(results, reps, warmup, time.perf_counter() - started)


def _result(results: dict[str, list[dict[str, Any]]], reps: int, warmup: int, elapsed: float) -> BenchResult:
    def values(name: str, key: str) -> list[float]:
        return [float(run[key]) for run in results[name] if key in run]

    baseline = "plain SDK script + local services"
    baseline_wall = statistics.median(values(baseline, "wall_s"))
    rows = []
    for name in results:
        if name.startswith("batchpipe run"):
            wall = statistics.median(values(name, "wall_s"))
            rows.append(
                Row(
                    f"{name}: command to verified outputs",
                    "s",
                    values(name, "wall_s"),
                    versus=ratio_text(wall / baseline_wall, "plain SDK"),
                    goal=f"≤ {GOAL_SECONDS:.0f} s warm",
                    met=wall <= GOAL_SECONDS,
                )
            )
    rows.append(Row(f"{baseline}: command to verified outputs", "s", values(baseline, "wall_s")))
    alone = "local services alone: start + stop"
    rows.append(Row("Azurite start", "s", values(alone, "azurite_start_s")))
    rows.append(Row("local Batch service start", "s", values(alone, "batch_start_s")))
    rows.append(Row("both stop", "s", values(alone, "stop_s")))
    return BenchResult(
        name="demo",
        title="1. Embedded demo: batchpipe run --approve yes",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=[_phase_table(results)],
        params={"files": "the 3 samples", "reps": f"{reps} (+{warmup} warm-up round)"},
        elapsed_s=elapsed,
        raw=results,
    )


def _phase_table(results: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for name, runs in results.items():
        if not name.startswith("batchpipe run"):
            continue

        def median(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
            present = [r[key] for r in runs if key in r]
            return statistics.median(present) if present else None

        begins, finished, wall = median("flow_begins"), median("flow_finished"), median("wall_s")
        prefect = median("prefect_starting")
        if begins is None or finished is None or wall is None:
            continue
        rows.append(
            [
                name,
                f"{prefect:.1f}" if prefect is not None else "-",
                f"{begins - prefect:.1f}" if prefect is not None else "-",
                f"{begins:.1f}",
                f"{finished - begins:.1f}",
                f"{wall - finished:.1f}",
                f"{wall:.1f}",
                f"{median('cpu_s') or 0:.1f}",
                f"{median('rss_mib') or 0:.0f}",
            ]
        )
    headers = [
        "case",
        "start → Prefect starting s",
        "Prefect start s",
        "start → flow begins s",
        "flow s",
        "flow end → exit s",
        "wall s",
        "CPU s",
        "peak RSS MiB",
    ]
    return "Where the time goes in `batchpipe run` (medians; from its log timestamps):\n\n" + markdown_table(
        headers, rows
    )
