"""Statistics through azure-batch 15: ``$expand=stats`` on tasks, jobs, job schedules and pools, filled from
what the service measured, and ``list_pool_usage_metrics``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batch_models

from batch_emulator.server import ThreadedEmulator

# Some CPU time in the shell itself (no child processes).
BUSY = "/bin/sh -c 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done'"


def test_stats_come_from_what_the_tasks_used(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    client.create_pool(helpers.pool_options("stats-pool", nodes=1, slots=2))
    job_options = batch_models.BatchJobCreateOptions(
        id="stats-job", pool_info=batch_models.BatchPoolInfo(pool_id="stats-pool")
    )
    client.create_job(job_options)
    client.create_tasks(
        "stats-job",
        [
            batch_models.BatchTaskCreateOptions(id="busy", command_line=BUSY),
            batch_models.BatchTaskCreateOptions(id="fails", command_line="/bin/false"),
        ],
    )
    helpers.wait_for_tasks(client, "stats-job", 2)

    busy = client.get_task("stats-job", "busy", expand=["stats"]).task_statistics
    cpu = busy.user_cpu_time + busy.kernel_cpu_time
    assert timedelta(seconds=0.01) < cpu <= busy.wall_clock_time + timedelta(seconds=0.05)
    assert busy.wait_time >= timedelta(0)
    assert busy.url.endswith("/jobs/stats-job/tasks/busy")
    assert client.get_task("stats-job", "busy").task_statistics is None  # only when asked for

    job = client.get_job("stats-job", expand=["stats"]).job_statistics
    assert (job.succeeded_tasks_count, job.failed_tasks_count, job.task_retries_count) == (1, 1, 0)
    assert job.user_cpu_time >= busy.user_cpu_time
    listed = {item.id: item.job_statistics for item in client.list_jobs(expand=["stats"])}
    assert listed["stats-job"].succeeded_tasks_count == 1
    tasks = {item.id: item.task_statistics for item in client.list_tasks("stats-job", expand=["stats"])}
    assert tasks["busy"].user_cpu_time == busy.user_cpu_time

    pool = client.get_pool("stats-pool", expand=["stats"]).pool_statistics
    assert pool.usage_statistics.dedicated_core_time > timedelta(0)  # 2 cores since the node joined
    assert pool.resource_statistics.disk_write_iops >= 0

    now = datetime.now(UTC)
    metrics = list(client.list_pool_usage_metrics(start_time=now - timedelta(hours=1), end_time=now))
    ours = [item for item in metrics if item.pool_id == "stats-pool"]
    assert ours
    assert all(item.vm_size == "standard_d2s_v3" for item in ours)
    assert sum(item.total_core_hours for item in ours) > 0
    assert all(item.end_time - item.start_time == timedelta(minutes=30) for item in ours)
    client.begin_delete_job("stats-job", polling_interval=0).result()
    client.begin_delete_pool("stats-pool", polling_interval=0).result()
    after = list(client.list_pool_usage_metrics(filter="poolId eq 'stats-pool'"))
    assert [item.pool_id for item in after] == ["stats-pool"]  # a deleted pool's core hours still count
