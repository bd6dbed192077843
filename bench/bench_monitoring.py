"""Benchmark 4: what one monitoring poll costs on the wire: task counts vs listing every task.

One ``python -m batch_emulator`` child process runs two jobs of trivial tasks to completion on a pool of 4 nodes x 8
slots: a small one and one of 10,000 tasks. Then polls are made against each job, interleaved, with clients whose
per-retry pipeline policy counts every HTTP request and the response bytes (client side, as received):

* **counts** (the pipeline, ``tasks/monitoring.py``): ``read_counts`` (one ``GET /jobs/{id}/taskcounts``) plus
  ``broken_nodes`` (one ``GET /pools/{id}/nodes`` with ``$select``), the two requests the pipeline makes per poll;
* **list every task** (the tutorial's way): ``list(client.list_tasks(job_id))`` with no ``$select``, following
  ``odata.nextLink`` pages (the service returns at most 1,000 tasks per page).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batchmodels

from bench import _batch
from bench._common import interleaved
from bench._context import Context
from bench._results import BenchResult, Row, ratio_text

NODES, SLOTS = 4, 8
GOAL_REQUESTS = 2


def _counts_poll(batch: BatchClient, job_id: str) -> None:
    from tasks.monitoring import broken_nodes, read_counts

    read_counts(batch, job_id)
    broken_nodes(batch, "pool")


def _list_poll(batch: BatchClient, job_id: str) -> None:
    tasks = list(batch.list_tasks(job_id))
    if not tasks:
        raise RuntimeError(f"job {job_id} has no tasks")


def _measure(
    poll: Callable[[BatchClient, str], None], batch: BatchClient, counter: _batch.TrafficCounter, job: str
) -> dict[str, float]:
    """One poll: the requests and response bytes it put on the wire, and its duration."""
    before = counter.snapshot()
    started = time.perf_counter()
    poll(batch, job)
    seconds = time.perf_counter() - started
    after = counter.snapshot()
    return {"requests": after[0] - before[0], "bytes": after[2] - before[2], "ms": seconds * 1000}


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (jobs of 1,000 and 10,000 tasks; 200 and 1,000 in quick mode)."""
    started = time.perf_counter()
    sizes = [200, 1000] if ctx.quick else [1000, 10_000]
    reps = ctx.reps(2, 5)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-monitoring-", dir="/dev/shm"))
    counter = _batch.TrafficCounter()
    try:
        with _batch.emulator(data_dir) as service:
            setup = _batch.client(service.url)
            _batch.create_pool(setup, "pool", NODES, SLOTS)
            for count in sizes:
                job = f"job{count}"
                setup.create_job(
                    batchmodels.BatchJobCreateOptions(id=job, pool_info=batchmodels.BatchPoolInfo(pool_id="pool"))
                )
                setup.create_tasks(job, _batch.trivial_tasks(count), max_concurrency=8)
                _batch.wait_completed(setup, job, count, interval=0.2)
            ctx.log(f"monitoring: jobs of {', '.join(f'{n:,}' for n in sizes)} tasks completed")
            batch = _batch.client(service.url, counter)
            _counts_poll(batch, f"job{sizes[0]}")  # imports tasks.monitoring (and Prefect) outside the timing
            cases: dict[str, Callable[[], dict[str, float]]] = {}
            for count in sizes:
                job = f"job{count}"
                cases[f"counts + node list, {count:,} tasks"] = partial(_measure, _counts_poll, batch, counter, job)
                cases[f"list every task, {count:,} tasks"] = partial(_measure, _list_poll, batch, counter, job)
            results = interleaved(cases, reps)
            batch.close()
            setup.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return _result(results, sizes, reps, time.perf_counter() - started)


def _result(results: dict[str, list[dict[str, float]]], sizes: list[int], reps: int, elapsed: float) -> BenchResult:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    rows = []
    counts_requests = {count: median(f"counts + node list, {count:,} tasks", "requests") for count in sizes}
    constant = len(set(counts_requests.values())) == 1
    for count in sizes:
        ours, tutorial = f"counts + node list, {count:,} tasks", f"list every task, {count:,} tasks"
        rows.append(
            Row(
                f"{ours}: requests per poll",
                "",
                [r["requests"] for r in results[ours]],
                versus=ratio_text(median(ours, "requests") / median(tutorial, "requests"), "listing", 3),
                goal=f"constant, ≤ {GOAL_REQUESTS}",
                met=constant and median(ours, "requests") <= GOAL_REQUESTS,
                digits=0,
            )
        )
        rows.append(Row(f"{tutorial}: requests per poll", "", [r["requests"] for r in results[tutorial]], digits=0))
        rows.append(
            Row(
                f"{ours}: response bytes per poll",
                "B",
                [r["bytes"] for r in results[ours]],
                versus=ratio_text(median(ours, "bytes") / median(tutorial, "bytes"), "listing", 4),
                digits=0,
            )
        )
        rows.append(Row(f"{tutorial}: response bytes per poll", "B", [r["bytes"] for r in results[tutorial]], digits=0))
        rows.append(
            Row(
                f"{ours}: time per poll",
                "ms",
                [r["ms"] for r in results[ours]],
                versus=ratio_text(median(ours, "ms") / median(tutorial, "ms"), "listing", 3),
                digits=1,
            )
        )
        rows.append(Row(f"{tutorial}: time per poll", "ms", [r["ms"] for r in results[tutorial]], digits=1))
    large = sizes[-1]
    list_bytes = median(f"list every task, {large:,} tasks", "bytes")
    notes = [
        f"At {large:,} tasks the tutorial's poll moves {list_bytes / 2**20:.1f} MiB; polled every second for the "
        f"length of a job that is {list_bytes * 3600 / 2**30:.1f} GiB per hour of monitoring, against "
        f"{median(f'counts + node list, {large:,} tasks', 'bytes') * 3600 / 2**20:.1f} MiB per hour for the "
        "pipeline's two requests."
    ]
    raw: dict[str, Any] = dict(results)
    return BenchResult(
        name="monitoring",
        title="4. Monitoring: HTTP requests and bytes per poll",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=notes,
        params={"tasks": " and ".join(f"{n:,}" for n in sizes), "polls per case": reps},
        elapsed_s=elapsed,
        raw=raw,
    )
