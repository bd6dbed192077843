"""Benchmark 3: submitting tasks, ``create_tasks`` (chunks of 100, parallel requests) vs one ``create_task`` each.

Each measurement starts a fresh ``python -m batch_emulator`` child process (data directory under ``/tmp``) and
submits tasks shaped like the pipeline's (a ``/bin/sh -c`` command line, one resource file with a SAS URL, one
environment setting, constraints; about 1 KB of JSON each) to a job whose pool does not exist, so they stay
active and nothing runs while the API is measured. The candidate is ``BatchClient.create_tasks(...,
max_concurrency=8)``, what the pipeline does; ``max_concurrency=1`` (chunks sent one after another) is shown too.
The baseline is one ``create_task`` request per task, what other orchestrators do; it is measured on fewer tasks
and its time extrapolated linearly to the full count (requests are independent, the rate is flat). The cases are
interleaved; the ratio compares rates.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from azure.batch import models as batchmodels

from bench import _batch
from bench._common import interleaved
from bench._context import Context
from bench._results import BenchResult, Row, ratio_text

GOAL_RATE = 1000.0
GOAL_SPEEDUP = 10.0
CONCURRENCY = 8  # tasks/submission.py SUBMIT_CONCURRENCY
FAKE_SAS = "sv=2026-10-06&st=2026-11-25T13%3A00%3A00Z&se=2026-11-25T15%3A00%3A00Z&sr=b&sp=r&sig=" + "A" * 44


def pipeline_like_tasks(count: int) -> list[batchmodels.BatchTaskCreateOptions]:
    """``count`` tasks with the pipeline's shape and size."""
    tasks = []
    for index in range(count):
        blob = f"document-{index:06d}.txt"
        command = (
            '/bin/sh -c \'python3 "$AZ_BATCH_NODE_SHARED_DIR"/batchpipe-node-app-0.1.0-6e4646433d1d.pyz '
            f"--filepath {blob} --numwords 3 --storageaccount devstoreaccount1 --storagecontainer output "
            "--blob-endpoint http://127.0.0.1:10000/devstoreaccount1 --sas-env BATCHPIPE_OUTPUT_SAS'"
        )
        tasks.append(
            batchmodels.BatchTaskCreateOptions(
                id=f"topn-document-{index:06d}-{index:08x}",
                display_name=f"top 3 words of {blob}",
                command_line=command,
                resource_files=[
                    batchmodels.ResourceFile(
                        http_url=f"http://127.0.0.1:10000/devstoreaccount1/input/{blob}?{FAKE_SAS}", file_path=blob
                    )
                ],
                environment_settings=[batchmodels.EnvironmentSetting(name="BATCHPIPE_OUTPUT_SAS", value=FAKE_SAS)],
                constraints=batchmodels.BatchTaskConstraints(
                    max_task_retry_count=1, max_wall_clock_time=timedelta(seconds=1200)
                ),
            )
        )
    return tasks


def measure_once(count: int, concurrency: int | None) -> dict[str, float]:
    """Submit ``count`` tasks to a fresh service; ``concurrency`` None means one ``create_task`` per task.

    Returns:
        ``rate`` (tasks/s), ``seconds``, ``requests``, ``request_bytes``.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="bench-submission-"))
    tasks = pipeline_like_tasks(count)
    counter = _batch.TrafficCounter()
    try:
        with _batch.emulator(data_dir) as service:
            batch = _batch.client(service.url, counter)
            batch.create_job(
                batchmodels.BatchJobCreateOptions(id="job", pool_info=batchmodels.BatchPoolInfo(pool_id="absent"))
            )
            before = counter.snapshot()
            started = time.perf_counter()
            if concurrency is None:
                for task in tasks:
                    batch.create_task("job", task)
            else:
                batch.create_tasks("job", tasks, max_concurrency=concurrency)
            seconds = time.perf_counter() - started
            after = counter.snapshot()
            total = batch.get_job_task_counts("job").task_counts.active
            batch.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    if total != count:
        raise RuntimeError(f"submitted {count} tasks, the job has {total} active")
    return {
        "rate": count / seconds,
        "seconds": seconds,
        "requests": after[0] - before[0],
        "request_bytes": after[1] - before[1],
    }


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (10,000 tasks; 1,000 in quick mode)."""
    started = time.perf_counter()
    count = 1000 if ctx.quick else 10_000
    one_by_one = 200 if ctx.quick else 1000
    reps = ctx.reps(1, 3)
    parallel_name = f"create_tasks, max_concurrency={CONCURRENCY}, {count:,} tasks"
    serial_name = f"create_tasks, max_concurrency=1, {count:,} tasks"
    baseline_name = f"create_task one by one, {one_by_one:,} tasks (rate extrapolated to {count:,})"
    cases = {
        parallel_name: lambda: measure_once(count, CONCURRENCY),
        serial_name: lambda: measure_once(count, 1),
        baseline_name: lambda: measure_once(one_by_one, None),
    }
    results = interleaved(cases, reps, progress=ctx.log)
    baseline_rate = statistics.median(r["rate"] for r in results[baseline_name])
    rows = []
    for name, runs in results.items():
        rates = [r["rate"] for r in runs]
        rate = statistics.median(rates)
        is_candidate = name == parallel_name
        rows.append(
            Row(
                f"{name}: rate",
                "tasks/s",
                rates,
                versus="" if name == baseline_name else ratio_text(rate / baseline_rate, "one by one"),
                goal=f"≥ {GOAL_RATE:,.0f} tasks/s and ≥ {GOAL_SPEEDUP:.0f}\u00d7 one by one" if is_candidate else "",
                met=(rate >= GOAL_RATE and rate / baseline_rate >= GOAL_SPEEDUP) if is_candidate else None,
                digits=0,
            )
        )
    seconds = {name: count / statistics.median(r["rate"] for r in runs) for name, runs in results.items()}
    requests = {name: statistics.median(r["requests"] for r in runs) for name, runs in results.items()}
    request_kib = {
        name: statistics.median(r["request_bytes"] / r["requests"] / 1024 for r in runs)
        for name, runs in results.items()
    }
    notes = [
        f"Time for {count:,} tasks (medians): "
        + "; ".join(
            f"{name.split(', ' + format(count, ','))[0]}: {seconds[name]:.1f} s, {requests[name]:,.0f} requests"
            f" of {request_kib[name]:.0f} KiB"
            for name in results
        )
        + f" (one by one: the time is extrapolated from {one_by_one:,} tasks, the requests are as measured)."
    ]
    return BenchResult(
        name="submission",
        title="3. Submission: create_tasks vs one create_task per task",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=notes,
        params={"tasks": f"{count:,}", "one-by-one baseline": f"{one_by_one:,} tasks, extrapolated", "reps": reps},
        elapsed_s=time.perf_counter() - started,
        raw=results,
    )
