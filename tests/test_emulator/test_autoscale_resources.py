"""Autoscale formulas read memory, disk and disk I/O measured on the nodes' task processes (local Batch, 600x time)."""

from __future__ import annotations

from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batch_models

from batch_emulator.server import ThreadedEmulator

# Touches 160 MiB of memory page by page, writes 16 MiB in 1 MiB writes, then waits to be terminated.
HUNGRY = (
    'python3 -c "import os, time; d = bytearray(160 * 2**20); d[::4096] = bytes([1]) * (len(d) // 4096);'
    " f = open('blob.bin', 'wb'); [f.write(os.urandom(2**20)) for _ in range(16)]; f.close();"
    " open('written', 'w').close(); time.sleep(120)\""
)
FORMULA = """
    mem = $MemoryBytes;
    disk = $DiskBytes;
    wops = sum($DiskWriteOps.GetSample(TimeInterval_Minute * 600, 0));
    $TargetDedicatedNodes = mem > 100 ? 1 : 0;
"""


def results(run: batch_models.AutoScaleRun) -> dict[str, float]:
    assert run.error is None, run.error
    pairs = (item.split("=", 1) for item in (run.results or "").split(";") if "=" in item)
    return {name: float(value) for name, value in pairs if not name.startswith("$NodeDeallocation")}


def test_a_formula_reads_the_memory_disk_and_writes_of_the_running_tasks(
    scaled_emulator: ThreadedEmulator, helpers: Any
) -> None:
    client: BatchClient = helpers.make_client(scaled_emulator)
    pool = helpers.pool_options("resource-pool", enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes=1")
    pool.target_dedicated_nodes = None  # autoscale pools have no fixed targets
    client.create_pool(pool)
    helpers.wait_for_idle_nodes(client, "resource-pool", 1)
    client.create_job(
        batch_models.BatchJobCreateOptions(id="hungry", pool_info=batch_models.BatchPoolInfo(pool_id="resource-pool"))
    )

    def evaluate() -> dict[str, float]:
        options = batch_models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=FORMULA)
        return results(client.evaluate_pool_auto_scale("resource-pool", options))

    idle = evaluate()
    assert idle["mem"] == 0  # no task process runs
    assert idle["$TargetDedicatedNodes"] == 0

    client.create_task("hungry", batch_models.BatchTaskCreateOptions(id="hog", command_line=HUNGRY))
    helpers.wait_until(lambda: client.get_task("hungry", "hog").state == "running", what="the task running")
    helpers.wait_until(
        lambda: any(f.name == "wd/written" for f in client.list_task_files("hungry", "hog", recursive=True)),
        timeout=30,
        what="the task's writes",
    )

    def measured() -> dict[str, float] | None:  # I/O is summed over samples, the directory's size re-read
        seen = evaluate()
        return seen if seen["wops"] >= 16 and seen["disk"] * 2**30 >= 16 * 2**20 else None

    busy = helpers.wait_until(measured, timeout=15, what="samples of the writes and the file")

    assert 160 <= busy["mem"] < 1024  # MB of resident memory on the pool's one node
    assert busy["$TargetDedicatedNodes"] == 1
    assert busy["disk"] < 1  # GB used by the node's directory: the 16 MiB file and little else
    client.terminate_task("hungry", "hog")
    helpers.wait_until(lambda: evaluate()["mem"] == 0, timeout=15, what="the task's memory released")
