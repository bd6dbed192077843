"""Benchmark 9: the local Batch service runs a 1,000-task DAG against 1,000 independent tasks.

One fresh ``python -m batch_emulator`` child process (data directory on ``/tmp``) with a pool of 4 nodes x 8 slots
(32 slots) and a warm-up job of 64 tasks. Each measurement creates a new job and submits N ``/bin/true`` tasks
with ``create_tasks`` (4 parallel requests), then polls the task counts every 50 ms until all are completed.
Baseline: N independent tasks. Candidate: the same N tasks in a job with ``usesTaskDependencies``, where task
``i`` (from 64 on) depends on the 65 tasks of the id range ``i-128 … i-64``: up to 64 tasks are ready at a
time, twice the slots, so the slots can stay fed and the ratio shows what dependencies cost end to end
(bookkeeping, and waiting for the slowest predecessor; every completion releases one task; about 59,000
dependency edges in all). Time = first submit request -> last completion
seen. The two cases are interleaved; the ratio compares medians.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batchmodels

from bench import _batch
from bench._common import interleaved
from bench._context import Context
from bench._results import BenchResult, Row, ratio_text

NODES, SLOTS = 4, 8
WIDTH = NODES * SLOTS
LAG = 2 * WIDTH  # task i depends on i-2*LAG .. i-LAG
WARMUP_TASKS = 64
GOAL_RATIO = 1.5  # the DAG may take at most 1.5x the time of the same number of independent tasks


def dag_tasks(count: int) -> list[batchmodels.BatchTaskCreateOptions]:
    """``count`` trivial tasks; task ``i >= LAG`` depends on the range ``i-2*LAG .. i-LAG``."""
    tasks = []
    for i in range(count):
        depends_on = None
        if i >= LAG:
            span = batchmodels.BatchTaskIdRange(start=max(0, i - 2 * LAG), end=i - LAG)
            depends_on = batchmodels.BatchTaskDependencies(task_id_ranges=[span])
        tasks.append(batchmodels.BatchTaskCreateOptions(id=str(i), command_line="/bin/true", depends_on=depends_on))
    return tasks


def bookkeeping_seconds(count: int) -> float:
    """The dependency graph alone (no service, no processes): register the DAG's tasks, then satisfy every id."""
    from batch_emulator.models.dependencies import DependencyGraph

    class Waiter:  # what the graph needs of a task: identity, seq and removed
        def __init__(self, seq: int) -> None:
            self.seq, self.removed = seq, False

    graph = DependencyGraph(None)  # type: ignore[arg-type]
    started = time.perf_counter()
    for i in range(LAG, count):
        task = Waiter(i)
        graph.register(task, {"taskIdRanges": [{"start": max(0, i - 2 * LAG), "end": i - LAG}]})  # type: ignore[arg-type]
    for i in range(count):
        graph.satisfy(str(i))
    return time.perf_counter() - started


def measure_once(batch: BatchClient, job_id: str, count: int, *, dag: bool) -> dict[str, float]:
    """Run ``count`` tasks in a new job, as a DAG or independent.

    Returns:
        ``seconds`` (submit to last completion), ``submit_s`` and ``rate`` (tasks/s).

    Raises:
        RuntimeError: a task failed.
    """
    info = batchmodels.BatchPoolInfo(pool_id="pool")
    batch.create_job(batchmodels.BatchJobCreateOptions(id=job_id, pool_info=info, uses_task_dependencies=dag))
    tasks = dag_tasks(count) if dag else _batch.trivial_tasks(count)
    started = time.perf_counter()
    batch.create_tasks(job_id, tasks, max_concurrency=4)
    submitted = time.perf_counter()
    counts = _batch.wait_completed(batch, job_id, count)
    finished = time.perf_counter()
    batch.begin_delete_job(job_id).result()
    if counts.failed:
        raise RuntimeError(f"{counts.failed} tasks of {job_id} failed")
    return {"seconds": finished - started, "submit_s": submitted - started, "rate": count / (finished - started)}


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (1,000 tasks; 300 in quick mode)."""
    started = time.perf_counter()
    count = 300 if ctx.quick else 1000
    reps = ctx.reps(1, 5)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-dependencies-"))
    rounds = iter(range(1_000_000))
    try:
        with _batch.emulator(data_dir) as service:
            batch = _batch.client(service.url)
            _batch.create_pool(batch, "pool", NODES, SLOTS)
            warmup = batchmodels.BatchPoolInfo(pool_id="pool")
            batch.create_job(batchmodels.BatchJobCreateOptions(id="warmup", pool_info=warmup))
            batch.create_tasks("warmup", _batch.trivial_tasks(WARMUP_TASKS, "w"), max_concurrency=4)
            _batch.wait_completed(batch, "warmup", WARMUP_TASKS)
            cases = {
                f"{count:,} independent tasks": lambda: measure_once(batch, f"flat-{next(rounds)}", count, dag=False),
                f"{count:,}-task DAG (ranges)": lambda: measure_once(batch, f"dag-{next(rounds)}", count, dag=True),
            }
            results = interleaved(cases, reps, progress=ctx.log)
            batch.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    flat_name, dag_name = list(cases)
    flat = statistics.median(r["seconds"] for r in results[flat_name])
    dag = statistics.median(r["seconds"] for r in results[dag_name])
    rows = [
        Row(f"{flat_name}: submit to last completion", "s", [r["seconds"] for r in results[flat_name]], digits=2),
        Row(
            f"{dag_name}: submit to last completion",
            "s",
            [r["seconds"] for r in results[dag_name]],
            versus=ratio_text(dag / flat, "independent"),
            goal=f"≤ {GOAL_RATIO}x independent",
            met=dag / flat <= GOAL_RATIO,
            digits=2,
        ),
    ]
    raw: dict[str, Any] = dict(results)
    graph = statistics.median(bookkeeping_seconds(count) for _ in range(5))
    notes = [
        f"The dependency graph alone (register the {count:,} tasks, then satisfy every id; in-process, no service)"
        f" takes {graph * 1000:.0f} ms, {graph / count * 1e6:.0f} µs per task."
    ]
    return BenchResult(
        name="dependencies",
        title="9. Local Batch service: task dependencies",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=notes,
        params={"tasks": f"{count:,}", "pool": f"{NODES} nodes x {SLOTS} slots", "reps": reps},
        elapsed_s=time.perf_counter() - started,
        raw=raw,
    )
