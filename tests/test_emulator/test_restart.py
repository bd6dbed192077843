"""A restart on the same data directory keeps pools, jobs and tasks, and requeues tasks that were running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batch_models

from batch_emulator.server import EmulatorConfig, ThreadedEmulator


def test_state_survives_a_restart(tmp_path: Path, helpers: Any) -> None:
    config = EmulatorConfig(port=0, allocation_seconds=0.05, data_dir=tmp_path)
    with ThreadedEmulator(config) as first:
        client: BatchClient = helpers.make_client(first)
        helpers.ready_pool(client, "kept-pool", nodes=1, slots=2)
        client.create_job(
            batch_models.BatchJobCreateOptions(id="kept-job", pool_info=batch_models.BatchPoolInfo(pool_id="kept-pool"))
        )
        client.create_tasks(
            "kept-job",
            [
                batch_models.BatchTaskCreateOptions(id="quick", command_line="/bin/echo quick"),
                batch_models.BatchTaskCreateOptions(
                    id="interrupted", command_line='/bin/bash -c "test -f marker || { touch marker; sleep 30; }"'
                ),
            ],
        )
        helpers.wait_until(lambda: client.get_task("kept-job", "quick").state == "completed", what="quick done")
        helpers.wait_until(
            lambda: helpers.has_file(client, "kept-job", "interrupted", "wd/marker"), what="the marker file"
        )
        node_id = client.get_task("kept-job", "quick").node_info.node_id

    with ThreadedEmulator(config) as second:
        client = helpers.make_client(second)
        pool = client.get_pool("kept-pool")
        assert (pool.state, pool.current_dedicated_nodes) == ("active", 1)
        assert [node.id for node in client.list_nodes("kept-pool")] == [node_id]
        quick = client.get_task("kept-job", "quick")
        assert (quick.state, quick.execution_info.exit_code) == ("completed", 0)
        assert b"".join(client.download_task_file("kept-job", "quick", "stdout.txt")) == b"quick\n"
        resumed = helpers.wait_until(
            lambda: (task := client.get_task("kept-job", "interrupted")).state == "completed" and task,
            what="requeued task completed",
        )
        assert resumed.execution_info.requeue_count == 1
        assert resumed.execution_info.exit_code == 0
        assert client.get_job_task_counts("kept-job").task_counts.succeeded == 2
