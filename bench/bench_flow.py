"""Benchmark 2: flow overhead, the Prefect flow vs the same steps as a plain azure-batch/azure-storage-blob script.

One Azurite and one local Batch service (child processes, state under the scratch directory) and one local Prefect
server (``batchpipe.prefect_server``, 127.0.0.1, temporary ``PREFECT_HOME``) serve every run. Each case is a fresh
child process given the same ``BATCHPIPE_*`` settings (pool of 2 nodes x 4 task slots, a pool id of its own) and
the same inputs, and must end with every output downloaded and verified:

* **plain SDK** (baseline): ``bench/plain_sdk_pipeline.py``, no Prefect;
* **flow, Prefect server**: ``bench/flow_runner.py`` calling ``flows.pipeline.top_words_pipeline(approval="yes")``
  with ``PREFECT_API_URL`` set.

Prefect's ephemeral mode (no server; what ``batchpipe run`` uses unless ``PREFECT_API_URL`` is set) adds a
temporary server's start to every process, ~6-20 s here: benchmark 1 measures it, as shipped, against a running
server. The services keep their state on tmpfs (``/dev/shm``), so that the 1,000 task runs, identical on both sides,
take less of the suite's time (benchmark 5 shows what ``/tmp`` costs).

Wall time is the child process from start to exit (interpreter, imports and clean-up included); "in-process" is
the pipeline call alone as each script reports it. The CPU columns come from GNU time (the child) and
``/proc/<pid>/stat`` of the services (the task processes are the Batch service's children it waited for).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import interleaved, process_cpu_seconds, run_measured
from bench._context import PROJECT_ROOT, Context
from bench._results import BenchResult, Row, ratio_text

GOAL_RATIO = 1.3
GOAL_TASKS = 1000
SHM = "/dev/shm" if Path("/dev/shm").is_dir() else None
NODES, SLOTS = 2, 4
_VOCABULARY = (
    "the of and to a in is it you that he was for on are with as his they be at one have this from or had by "
    "harbour orchard observatory batch pool node task storage blob container output input compute"
)
_WORDS = _VOCABULARY.split()


def make_inputs(directory: Path, count: int, words: int = 300, seed: int = 7) -> Path:
    """Write ``count`` small text files (``words`` words each, seeded) into ``directory``."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        text = " ".join(rng.choices(_WORDS, k=words))
        (directory / f"doc{index:05d}.txt").write_text(text + "\n", "utf-8")
    return directory


class FlowCases:
    """The services and the per-case directories and environments."""

    def __init__(self, ctx: Context, endpoints: Any, services: dict[str, int]) -> None:
        self.ctx = ctx
        self.services = services
        self.settings = {
            **endpoints.environment(),
            "BATCHPIPE_NODE_COUNT": str(NODES),
            "BATCHPIPE_TASK_SLOTS_PER_NODE": str(SLOTS),
        }

    def run_case(self, kind: str, inputs: Path, expected: int) -> dict[str, Any]:
        """Run one case once in a fresh child process; raise if it did not produce every verified output."""
        ctx = self.ctx
        cwd = ctx.workdir / f"case-{kind}"
        cwd.mkdir(exist_ok=True)
        env = {**ctx.base_environment(), **self.settings, "BATCHPIPE_POOL_ID": f"bench-{kind}"}
        script = "plain_sdk_pipeline.py" if kind == "plain" else "flow_runner.py"
        if kind == "server":
            env.update(ctx.prefect_server().client_environment())
        out_dir = cwd / "outputs"
        argv = [sys.executable, str(PROJECT_ROOT / "bench" / script), str(inputs), "--output-dir", str(out_dir)]
        cpu_before = {name: process_cpu_seconds(pid) for name, pid in self._pids(kind).items()}
        measurement = run_measured(argv, cwd=cwd, env=env, stdout_path=cwd / "stdout.txt")
        cpu = {}
        for name, pid in self._pids(kind).items():
            own, children = process_cpu_seconds(pid)
            cpu[name] = own - cpu_before[name][0]
            if name == "batch_service":
                cpu["task_processes"] = children - cpu_before[name][1]
        stdout = (cwd / "stdout.txt").read_text("utf-8", "replace").strip().splitlines()
        summary = json.loads(stdout[-1]) if stdout and stdout[-1].startswith("{") else {}
        if measurement.returncode != 0 or summary.get("outputs") != expected:
            tail = (cwd / "stdout.txt.err").read_text("utf-8", "replace")[-800:]
            raise RuntimeError(f"{kind} run failed (exit {measurement.returncode}, {summary}): {tail}")
        return {
            "wall_s": measurement.wall_s,
            "in_process_s": summary["elapsed_s"],
            "client_cpu_s": measurement.cpu_s,
            "client_rss_mib": measurement.max_rss_kib / 1024,
            **{f"{name}_cpu_s": value for name, value in cpu.items()},
            "phases": summary.get("phases", {}),
            "import_s": summary.get("import_s"),
        }

    def _pids(self, kind: str) -> dict[str, int]:
        pids = dict(self.services)
        if kind == "server":
            pids["prefect_server"] = self.ctx.prefect_server().pid
        return pids


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (3 and 1,000 tasks; 3 and 30 in quick mode)."""
    from batchpipe.local import local_stack

    started = time.perf_counter()
    small, large = (3, 30) if ctx.quick else (3, 1000)
    reps_small, reps_large = ctx.reps(1, 3), ctx.reps(1, 2)
    samples = PROJECT_ROOT / "samples"
    large_inputs = make_inputs(ctx.workdir / f"inputs-{large}", large)
    server = ctx.prefect_server()
    ctx.log(f"flow: Prefect server on {server.api_url}")
    # Services' state on tmpfs: the task runs (identical for both sides) finish sooner; see benchmark 5 for /tmp.
    state = Path(tempfile.mkdtemp(prefix="bench-flow-stack-", dir=SHM))
    try:
        with local_stack(state) as endpoints:
            services = _service_pids(endpoints, os.getpid())
            cases = FlowCases(ctx, endpoints, services)
            small_cases = {
                f"plain SDK, {small} tasks": lambda: cases.run_case("plain", samples, small),
                f"flow, Prefect server, {small} tasks": lambda: cases.run_case("server", samples, small),
            }
            results = interleaved(small_cases, reps_small, warmup=0 if ctx.quick else 1, progress=ctx.log)
            large_cases = {
                f"plain SDK, {large:,} tasks": lambda: cases.run_case("plain", large_inputs, large),
                f"flow, Prefect server, {large:,} tasks": lambda: cases.run_case("server", large_inputs, large),
            }
            results.update(interleaved(large_cases, reps_large, progress=ctx.log))
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return _result(results, small, large, reps_small, reps_large, time.perf_counter() - started)


def _service_pids(endpoints: Any, parent: int) -> dict[str, int]:
    """PIDs of the Azurite and Batch service children of this process (found by their command lines)."""
    from batchpipe.prefect_server import descendant_pids

    found = {}
    for pid in descendant_pids(parent):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "batch_emulator" in command and endpoints.batch_url:
            found["batch_service"] = pid
        elif "azurite" in command:
            found["azurite"] = pid
    return found


def _result(
    results: dict[str, list[dict[str, Any]]], small: int, large: int, reps_small: int, reps_large: int, elapsed: float
) -> BenchResult:
    def values(name: str, key: str) -> list[float]:
        return [float(run[key]) for run in results[name]]

    rows = []
    for size in (small, large):
        label = f"{size:,}"
        plain = f"plain SDK, {label} tasks"
        plain_wall = statistics.median(values(plain, "wall_s"))
        plain_inner = statistics.median(values(plain, "in_process_s"))
        rows.append(Row(f"{plain}: wall", "s", values(plain, "wall_s")))
        for flow in (f"flow, Prefect server, {label} tasks",):
            wall = statistics.median(values(flow, "wall_s"))
            is_goal = size == large == GOAL_TASKS
            rows.append(
                Row(
                    f"{flow}: wall",
                    "s",
                    values(flow, "wall_s"),
                    versus=ratio_text(wall / plain_wall, "plain SDK"),
                    goal=f"≤ {GOAL_RATIO}\u00d7 at {GOAL_TASKS:,} tasks" if is_goal else "",
                    met=(wall / plain_wall <= GOAL_RATIO) if is_goal else None,
                )
            )
        rows.append(Row(f"{plain}: in-process", "s", values(plain, "in_process_s")))
        for flow in (f"flow, Prefect server, {label} tasks",):
            if flow in results:
                inner = statistics.median(values(flow, "in_process_s"))
                rows.append(
                    Row(
                        f"{flow}: in-process",
                        "s",
                        values(flow, "in_process_s"),
                        versus=ratio_text(inner / plain_inner, "plain SDK"),
                    )
                )
    return BenchResult(
        name="flow",
        title="2. Flow overhead: Prefect flow vs plain SDK script",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=[_cpu_table(results), _phases_note(results, large)],
        params={
            "tasks": f"{small} (the samples) and {large:,} (generated, 300 words each)",
            "pool": f"{NODES} nodes x {SLOTS} slots",
            "reps": f"{reps_small} at {small}, {reps_large} at {large:,} (after a warm-up round at {small})",
        },
        elapsed_s=elapsed,
        raw=results,
    )


def _cpu_table(results: dict[str, list[dict[str, Any]]]) -> str:
    from bench._common import markdown_table

    columns = ["client_cpu_s", "prefect_server_cpu_s", "batch_service_cpu_s", "task_processes_cpu_s", "azurite_cpu_s"]
    rows = []
    for name, runs in results.items():
        cells = [name, f"{statistics.median(r['wall_s'] for r in runs):.1f}"]
        for column in columns:
            present = [r[column] for r in runs if column in r]
            cells.append(f"{statistics.median(present):.1f}" if present else "\u2013")
        cells.append(f"{statistics.median(r['client_rss_mib'] for r in runs):.0f}")
        rows.append(cells)
    headers = ["case", "wall s", "client CPU s", "Prefect server CPU s", "Batch service CPU s", "task processes CPU s"]
    headers += ["Azurite CPU s", "client peak RSS MiB"]
    return "Where the CPU goes (medians per run; the machine has 2 CPUs):\n\n" + markdown_table(headers, rows)


def _phases_note(results: dict[str, list[dict[str, Any]]], large: int) -> str:
    plain = results.get(f"plain SDK, {large:,} tasks", [])
    if not plain or not plain[0].get("phases"):
        return ""
    phases = {key: statistics.median(r["phases"][key] for r in plain) for key in plain[0]["phases"]}
    imports = [r["import_s"] for r in results.get(f"flow, Prefect server, {large:,} tasks", []) if r.get("import_s")]
    text = ", ".join(f"{key} {value:.1f} s" for key, value in phases.items())
    note = f"Plain SDK phases at {large:,} tasks (median): {text}."
    if imports:
        note += f" Importing the flow module (Prefect, SDKs) takes {statistics.median(imports):.1f} s per process."
    return note
