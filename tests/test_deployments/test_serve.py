"""`batchpipe serve`: the flow served from one process, with a cron schedule, against a real local server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from batchpipe.prefect_server import stop_worker
from batchpipe.services import PROJECT_ROOT, ServiceProcess

SAMPLES = PROJECT_ROOT / "samples"


def _wait_for_deployment(api: Any, name: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            deployment: dict[str, Any] = api.deployment(name)
            return deployment
        except httpx.HTTPStatusError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`batchpipe serve` did not register {name}: {log.read_text()[-1500:]}")
            time.sleep(0.2)  # polling the API until serve has registered its deployment


@pytest.mark.server
@pytest.mark.integration
def test_serve_registers_a_scheduled_deployment_and_runs_it(deployment_stack: Any, tmp_path: Path) -> None:
    api = deployment_stack.api
    pool_id, env = deployment_stack.run_settings("serve")
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "batchpipe.cli", "serve", "--name", "tests", "--cron", "30 5 * * *"]
    command += ["--approve", "yes", "--numwords", "2", "--output", str(tmp_path / "out")]
    with log.open("wb") as out:
        # From a directory outside the project: the module entrypoint and the default inputs still resolve.
        process = subprocess.Popen(
            command,
            env={**deployment_stack.client_env, **env, "BATCHPIPE_POOL_ID": pool_id},
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    serve = ServiceProcess("batchpipe serve", process, "", log)
    try:
        deployment = _wait_for_deployment(api, "batchpipe/tests", process, log)
        assert deployment["entrypoint"] == "flows.pipeline.top_words_pipeline"
        assert deployment["parameters"]["approval"] == "yes"
        assert deployment["parameters"]["inputs"] == [str(SAMPLES)]
        [schedule] = deployment["schedules"]
        assert schedule["schedule"]["cron"] == "30 5 * * *"

        run_id = api.run_deployment("batchpipe/tests", {"inputs": [str(SAMPLES / "harbour.txt")]})
        api.wait_for_state(run_id, "COMPLETED", timeout=120)
        [output] = (tmp_path / "out").glob("*/harbour_OUTPUT.txt")
        expected = deployment_stack.tutorial_top_words(SAMPLES / "harbour.txt", 2)
        assert output.read_text("utf-8").split("\n")[2:4] == [f"{w}:\t{c}" for w, c in expected]
        assert not deployment_stack.exists("pool", pool_id)
        assert len(api.flow_runs_of(deployment["id"], "SCHEDULED")) >= 3
    finally:
        stop_worker(serve)
    # Stopping serve pauses its deployment, so nothing is scheduled for a process that is gone.
    assert api.deployment("batchpipe/tests")["paused"] is True


@pytest.mark.parametrize(
    ("extra_env", "message"),
    [
        ({}, "the local target needs the local services"),
        ({"BATCHPIPE_BATCH_ENDPOINT": "http://127.0.0.1:9"}, "no Prefect server configured"),
    ],
)
def test_serve_without_its_services_says_what_to_start(tmp_path: Path, extra_env: dict[str, str], message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHPIPE_", "PREFECT_", "AZURE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", "serve"],
        env={**clean, **extra_env, "PREFECT_HOME": str(tmp_path / "prefect-home")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "batchpipe stack" in result.stderr
    assert "Traceback" not in result.stderr
