"""Benchmark 7: container tasks against the same tasks as plain processes, and the container start overhead.

One local Batch service (a child process, data directory under the scratch directory) gets two pools of 1 node x
8 slots on the same machine: one with a ``containerConfiguration`` (podman or docker, whichever the service finds)
whose tasks run in the local busybox image ``localhost/batchpipe-test/busybox:1`` (built once from
``busybox-static`` if missing), and one plain pool whose tasks run as processes. Each measurement submits N tasks
(``create_tasks``) running ``/bin/sh -c 'echo $AZ_BATCH_TASK_ID'`` to a new job on one pool and polls the task
counts every 50 ms until all are completed: wall = first submit request -> last completion seen. The two cases are
interleaved. Per task, ``executionInfo.endTime - startTime`` is collected from the same runs. The container start
overhead per task is measured without contention: 10 tasks one at a time (``maxParallelTasks`` 1), the median
container task duration minus the median process task duration.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batchmodels

from batch_emulator.node.containers.busybox import IMAGE_NAME, ensure_busybox_image
from batch_emulator.node.containers.runtime import detect_runtime
from bench import _batch
from bench._common import interleaved
from bench._context import Context
from bench._results import BenchResult, Row, ratio_text

SLOTS = 8
SERIAL_TASKS = 10
COMMAND = "/bin/sh -c 'echo $AZ_BATCH_TASK_ID'"
CONTAINER_IMAGE = batchmodels.BatchVmImageReference(
    publisher="microsoft-azure-batch", offer="ubuntu-server-container", sku="20-04-lts", version="latest"
)


def create_pools(batch: BatchClient) -> None:
    """A container pool and a plain pool of 1 node x 8 slots each, both idle."""
    batch.create_pool(
        batchmodels.BatchPoolCreateOptions(
            id="containers",
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=CONTAINER_IMAGE,
                node_agent_sku_id="batch.node.ubuntu 20.04",
                container_configuration=batchmodels.BatchContainerConfiguration(
                    type="dockerCompatible", container_image_names=[IMAGE_NAME]
                ),
            ),
            target_dedicated_nodes=1,
            task_slots_per_node=SLOTS,
        )
    )
    _batch.create_pool(batch, "processes", 1, SLOTS)
    deadline = time.monotonic() + 120
    while [str(getattr(n.state, "value", n.state)) for n in batch.list_nodes("containers")] != ["idle"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the container pool's node is not idle after 120 s")
        time.sleep(0.05)  # polling the service with a deadline


class Runner:
    """Runs batches of tasks on one pool or the other of a running service."""

    def __init__(self, batch: BatchClient) -> None:
        self.batch = batch
        self.jobs = 0

    def tasks(self, count: int, container: bool) -> list[batchmodels.BatchTaskCreateOptions]:
        settings = batchmodels.BatchTaskContainerSettings(image_name=IMAGE_NAME) if container else None
        return [
            batchmodels.BatchTaskCreateOptions(id=f"t{i:05d}", command_line=COMMAND, container_settings=settings)
            for i in range(count)
        ]

    def run(self, count: int, container: bool, serial: bool = False) -> dict[str, Any]:
        """Run ``count`` tasks on one pool; wall time and each task's duration.

        Raises:
            RuntimeError: a task failed.
        """
        self.jobs += 1
        job_id = f"job{self.jobs:04d}"
        pool = "containers" if container else "processes"
        self.batch.create_job(
            batchmodels.BatchJobCreateOptions(
                id=job_id, pool_info=batchmodels.BatchPoolInfo(pool_id=pool), max_parallel_tasks=1 if serial else -1
            )
        )
        started = time.perf_counter()
        self.batch.create_tasks(job_id, self.tasks(count, container), max_concurrency=4)
        counts = _batch.wait_completed(self.batch, job_id, count, timeout=1800)
        wall = time.perf_counter() - started
        if counts.failed:
            raise RuntimeError(f"{counts.failed} of {count} tasks failed on {pool}")
        durations = [
            (task.execution_info.end_time - task.execution_info.start_time).total_seconds()
            for task in self.batch.list_tasks(job_id, select=["id", "executionInfo"])
        ]
        self.batch.begin_delete_job(job_id).result()
        return {"wall": wall, "rate": count / wall, "task_median": statistics.median(durations)}


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (200 tasks per case, 3 rounds; quick: 40 tasks, 1 round)."""
    started = time.perf_counter()
    count = 40 if ctx.quick else 200
    reps = ctx.reps(1, 3)
    runtime = detect_runtime(None, ctx.scratch("containers-conf"))
    ensure_busybox_image(runtime)
    with _batch.emulator(ctx.scratch("containers-service")) as service:
        batch = _batch.client(service.url)
        create_pools(batch)
        runner = Runner(batch)
        runner.run(SLOTS, container=True)  # warm-up: first container start, page cache
        cases = {
            f"{count} tasks in containers": lambda: runner.run(count, container=True),
            f"{count} tasks as processes": lambda: runner.run(count, container=False),
        }
        results = interleaved(cases, reps, progress=ctx.log)
        serial = interleaved(
            {
                "container": lambda: runner.run(SERIAL_TASKS, container=True, serial=True),
                "process": lambda: runner.run(SERIAL_TASKS, container=False, serial=True),
            },
            reps,
            progress=ctx.log,
        )
        batch.close()
    process_name = list(cases)[1]
    process_wall = statistics.median(r["wall"] for r in results[process_name])
    rows: list[Row] = []
    for name, runs in results.items():
        wall = [r["wall"] for r in runs]
        versus = "" if name == process_name else ratio_text(statistics.median(wall) / process_wall, "processes")
        rows.append(Row(f"{name}: submit to all completed", "s", wall, versus=versus))
    for name, runs in results.items():
        rows.append(Row(f"{name}: completed per second", "tasks/s", [r["rate"] for r in runs], digits=1))
    for name, runs in results.items():
        rows.append(Row(f"{name}: one task's duration (8 at a time)", "s", [r["task_median"] for r in runs]))
    one_container = [r["task_median"] for r in serial["container"]]
    one_process = [r["task_median"] for r in serial["process"]]
    overhead = [container - process for container, process in zip(one_container, one_process, strict=True)]
    rows.append(Row("container start overhead per task (one at a time)", "s", overhead))
    rows.append(Row("one task's duration, one at a time: container", "s", one_container))
    rows.append(Row("one task's duration, one at a time: process", "s", one_process, digits=3))
    return BenchResult(
        name="containers",
        title="7. Container tasks vs plain processes",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=[f"Container runtime: {runtime.describe()}."],
        params={"tasks": count, "pool": f"1 node x {SLOTS} slots per case", "reps": reps},
        elapsed_s=time.perf_counter() - started,
        raw={"throughput": results, "serial": serial},
    )
