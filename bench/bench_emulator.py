"""Benchmark 5: the local Batch service runs trivial tasks; throughput and memory per finished task.

Each measurement starts a fresh ``python -m batch_emulator`` child process with its data directory on the disk
(``/tmp``, where its default temporary directory goes) or on tmpfs (``/dev/shm``), creates a pool of 4 nodes x 8
slots (32 slots: the service's default cap of task processes), runs a warm-up job of 64 tasks, then submits N
``/bin/true`` tasks (``create_tasks``, 4 parallel requests) and polls the task counts every 50 ms until all are
completed. Throughput = N / (first submit request -> last completion seen), so submission is included. Memory =
growth of the service process's RSS (``/proc/<pid>/status``) from after the warm-up to after the last completion,
divided by N. The two data-directory locations are interleaved.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from azure.batch import models as batchmodels

from bench import _batch
from bench._common import interleaved, process_memory_kib
from bench._context import Context
from bench._results import BenchResult, Row, ratio_text

LOCATIONS = {"/tmp (disk)": Path(tempfile.gettempdir()), "/dev/shm (tmpfs)": Path("/dev/shm")}
NODES, SLOTS = 4, 8
WARMUP_TASKS = 64
GOAL_RATE = 300.0
GOAL_BYTES_PER_TASK = 2048


def measure_once(base: Path, count: int) -> dict[str, float]:
    """One fresh service: warm-up job, then ``count`` trivial tasks; throughput and RSS growth.

    Args:
        base: where the data directory goes.
        count: tasks to run.

    Returns:
        ``rate`` (tasks/s), ``seconds``, ``submit_s``, ``rss_growth_kib``, ``bytes_per_task``, ``peak_kib``.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="bench-emulator-", dir=base))
    try:
        with _batch.emulator(data_dir) as service:
            batch = _batch.client(service.url)
            _batch.create_pool(batch, "pool", NODES, SLOTS)
            info = batchmodels.BatchPoolInfo(pool_id="pool")
            batch.create_job(batchmodels.BatchJobCreateOptions(id="warmup", pool_info=info))
            batch.create_tasks("warmup", _batch.trivial_tasks(WARMUP_TASKS, "w"), max_concurrency=4)
            _batch.wait_completed(batch, "warmup", WARMUP_TASKS)
            batch.create_job(batchmodels.BatchJobCreateOptions(id="job", pool_info=info))
            before = process_memory_kib(service.pid)["VmRSS"]
            started = time.perf_counter()
            batch.create_tasks("job", _batch.trivial_tasks(count), max_concurrency=4)
            submitted = time.perf_counter()
            counts = _batch.wait_completed(batch, "job", count)
            finished = time.perf_counter()
            memory = process_memory_kib(service.pid)
            batch.close()
            if counts.failed:
                raise RuntimeError(f"{counts.failed} trivial tasks failed")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    growth = memory["VmRSS"] - before
    return {
        "rate": count / (finished - started),
        "seconds": finished - started,
        "submit_s": submitted - started,
        "rss_growth_kib": growth,
        "bytes_per_task": growth * 1024 / count,
        "peak_kib": memory["VmHWM"],
    }


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (sizes 1k and 10k, or 500 and 1,500 in quick mode)."""
    started = time.perf_counter()
    sizes = [500, 1500] if ctx.quick else [1000, 10_000]
    reps = ctx.reps(1, 3)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for count in sizes:
        cases = {
            f"{label}, {count:,} tasks": (lambda base=base, count=count: measure_once(base, count))
            for label, base in LOCATIONS.items()
        }
        results = interleaved(cases, reps, progress=ctx.log)
        raw.update(results)
        disk_name = next(iter(cases))
        disk_rate = statistics.median(r["rate"] for r in results[disk_name])
        for name, runs in results.items():
            rate = [r["rate"] for r in runs]
            is_disk = name == disk_name
            versus = "" if is_disk else ratio_text(statistics.median(rate) / disk_rate, "/tmp")
            rows.append(
                Row(
                    f"{name}: completed per second",
                    "tasks/s",
                    rate,
                    versus=versus,
                    goal=f"≥ {GOAL_RATE:.0f} tasks/s",
                    met=statistics.median(rate) >= GOAL_RATE,
                    digits=0,
                )
            )
        for name, runs in results.items():
            per_task = [r["bytes_per_task"] for r in runs]
            rows.append(
                Row(
                    f"{name}: RSS growth per finished task",
                    "B",
                    per_task,
                    goal="≤ 2 KB per task",
                    met=statistics.median(per_task) <= GOAL_BYTES_PER_TASK,
                    digits=0,
                )
            )
    notes = [_marginal_memory_note(raw, sizes)]
    return BenchResult(
        name="emulator",
        title="5. Local Batch service: trivial tasks",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=notes,
        params={"tasks": " and ".join(f"{n:,}" for n in sizes), "pool": f"{NODES} nodes x {SLOTS} slots", "reps": reps},
        elapsed_s=time.perf_counter() - started,
        raw=raw,
    )


def _marginal_memory_note(raw: dict[str, Any], sizes: list[int]) -> str:
    small, large = sizes
    lines = []
    for label in LOCATIONS:
        growth_small = statistics.median(r["rss_growth_kib"] for r in raw[f"{label}, {small:,} tasks"])
        growth_large = statistics.median(r["rss_growth_kib"] for r in raw[f"{label}, {large:,} tasks"])
        marginal = (growth_large - growth_small) * 1024 / (large - small)
        peak = statistics.median(r["peak_kib"] for r in raw[f"{label}, {large:,} tasks"]) / 1024
        lines.append(
            f"{label}: RSS grew {growth_small / 1024:.1f} MiB for {small:,} tasks and {growth_large / 1024:.1f} MiB "
            f"for {large:,}, so each task beyond the first {small:,} cost {marginal:,.0f} B "
            f"(peak RSS {peak:.0f} MiB)."
        )
    return "Memory, marginal: " + " ".join(lines)
