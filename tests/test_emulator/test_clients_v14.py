"""The legacy client azure-batch 14.2 (``BatchServiceClient``, msrest) runs a whole workflow unchanged.

It lives in an environment of its own (``.venv-v14``, pinned by ``constraints-v14.txt``; ``make deps`` builds it,
and this module builds it when it is missing). The workflow is the Batch Python quickstart's: a pool with a
start task on ``STANDARD_DS1_V2`` and Ubuntu 20.04, a job, a task collection, waiting, stdout, deletion.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from tests.test_emulator.clients.environments import V14, client_python

pytestmark = pytest.mark.integration
WORKFLOW = Path(__file__).parent / "clients" / "v14_workflow.py"


@pytest.fixture(scope="module")
def v14_python() -> Path:
    """The interpreter of ``.venv-v14`` (built here, as ``make deps`` does, when missing)."""
    return client_python(V14)


@pytest.fixture(scope="module")
def service() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as running:
        yield running


def test_azure_batch_14_workflow(v14_python: Path, service: ThreadedEmulator) -> None:
    version = subprocess.run(
        [str(v14_python), "-c", "import azure.batch; print(azure.batch.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "14.2.0"
    run = subprocess.run(
        [str(v14_python), str(WORKFLOW), service.url, service.account_name, service.account_key],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout)
    assert seen["added"] == ["success"] * 5
    assert seen["exitCodes"] == [0] * 5
    assert seen["stdout"] == {f"task{i}": f"ready\ntask {i}\n" for i in range(5)}
    assert seen["startTask"] == "TaskExecutionResult.success"
    assert seen["succeeded"] == 5
    assert seen["vmSize"] == "standard_ds1_v2"
