"""What the node runner tests share: a job task's run specification, and running it to the end."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from batch_emulator.node.runner import run_task
from batch_emulator.node.spec import TaskRunResult, TaskRunSpec


def job_task(node_root: Path, command_line: str = "/bin/true", **changes: Any) -> TaskRunSpec:
    """Task ``task-1`` of job ``job-1`` on node ``tvmps_node-1`` of ``pool-1``, with ``changes`` to any field."""
    spec = TaskRunSpec(
        kind="job",
        account_name="emuaccount",
        pool_id="pool-1",
        node_id="tvmps_node-1",
        node_root=node_root,
        job_id="job-1",
        task_id="task-1",
        command_line=command_line,
        resource_files=[],
        environment_settings=[],
        output_files=[],
        max_wall_clock_seconds=30.0,
        batch_url="http://127.0.0.1:8001",
    )
    return replace(spec, **changes)


def run(spec: TaskRunSpec) -> TaskRunResult:
    """Run ``spec`` to its end (never cancelled)."""
    return run_task(spec, threading.Event())
