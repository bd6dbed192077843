"""10,000 inputs through `batchpipe run`: uploads, 100 add-collection chunks, monitoring by counts, 10,000
verified downloads. It must work, not just fail politely."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]
COUNT = 10_000


@pytest.mark.scenario(
    "Bad input",
    "10,000 inputs (tiny files in one directory) through `batchpipe run` (local target, 1 node with 8 slots)",
    "it works: exit 0, 10,000 tasks, 10,000 outputs downloaded and verified",
)
def test_ten_thousand_inputs_work(
    api_cli: Any,
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    observe: Callable[[str], None],
) -> None:
    sources = inputs(api_cli.workdir / "many", COUNT, prefix="f")
    env = {
        "BATCHPIPE_TASK_SLOTS_PER_NODE": "8",
        "BATCHPIPE_POLL_INTERVAL": "0.5",
        "BATCHPIPE_MAX_POLL_INTERVAL": "2",
        "BATCHPIPE_MONITOR_TIMEOUT": "3000",
    }
    args = ["run", "--input", "many", "--state-dir", "state", "--output", "out", "--approve", "yes"]

    result = api_cli.run(*args, env=env, timeout=3300)

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    job_id = re.search(r"Top words \(job (batchpipe-\w+)\)", log)
    assert job_id
    assert re.search(rf"Submitted {COUNT} tasks to job {job_id.group(1)} \(0 already there\)", log)
    assert f"uploaded {COUNT} files" in log
    assert f"Downloaded and verified {COUNT} outputs" in log
    assert re.search(r"pool batchpipe-pool: deleted; containers: deleted", log)
    verified = check_outputs(api_cli.workdir / "out" / job_id.group(1), sources, 3, job_id.group(1), "batchpipe-pool")
    observe(
        f"exit 0 in {result.seconds / 60:.1f} min on this machine: {COUNT} uploads, {COUNT} tasks in one job, "
        f"{verified} outputs verified on disk, job/pool/containers deleted"
    )
