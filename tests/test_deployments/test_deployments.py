"""The pipeline as a Prefect deployment on a real local server: deploy, schedule, trigger, pause and resume."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from batchpipe.services import PROJECT_ROOT

pytestmark = [pytest.mark.server, pytest.mark.integration]
DEPLOYMENT = "batchpipe/daily"
SAMPLES = PROJECT_ROOT / "samples"


def _summary_text(api: Any, run_id: str) -> str:
    return str(api.artifacts(run_id)["batchpipe-summary"]["data"])


def test_prefect_yaml_deploys_typed_parameters_and_a_daily_schedule(deployment_stack: Any) -> None:
    api = deployment_stack.api
    deployment = api.deployment(DEPLOYMENT)

    assert deployment["work_pool_name"] == "batchpipe"
    assert deployment["parameters"] == {
        "inputs": ["samples"],
        "output_dir": "outputs",
        "num_words": 3,
        "approval": "wait",
        "keep_containers": False,
    }
    properties = deployment["parameter_openapi_schema"]["properties"]
    assert properties["approval"]["enum"] == ["ask", "wait", "yes", "no"]
    assert properties["keep_containers"]["type"] == "boolean"
    assert {"type": "integer", "minimum": 1, "maximum": 100_000} in properties["num_words"]["anyOf"]
    assert all(properties[name].get("description") for name in properties)  # the UI form shows them
    # Flow runs work in the directory `prefect deploy` ran in, whatever directory the worker was started in.
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}
    ]
    [schedule] = deployment["schedules"]
    assert (schedule["schedule"]["cron"], schedule["schedule"]["timezone"], schedule["active"]) == (
        "0 6 * * *",
        "UTC",
        True,
    )


def test_the_schedule_produces_scheduled_runs_with_the_default_parameters(deployment_stack: Any) -> None:
    api = deployment_stack.api
    deployment = api.deployment(DEPLOYMENT)
    deadline = time.monotonic() + 30
    while len(runs := api.flow_runs_of(deployment["id"], "SCHEDULED")) < 3 and time.monotonic() < deadline:
        time.sleep(0.3)  # the server's scheduler loop creates them shortly after the deployment

    assert len(runs) >= 3
    starts = [datetime.fromisoformat(run["expected_start_time"]) for run in runs]
    assert all((start.hour, start.minute, start.second) == (6, 0, 0) for start in starts)
    assert all(start > datetime.now(UTC) for start in starts)
    assert len({start.date() for start in starts}) == len(starts)  # one a day
    assert all(run["parameters"] == deployment["parameters"] for run in runs)
    assert all(run["auto_scheduled"] for run in runs)


def test_a_run_triggered_with_parameters_completes_on_the_local_services(
    deployment_stack: Any, triggered_run: Any
) -> None:
    """`prefect deployment run` (the documented command) through the API, with parameters and job variables."""
    assert triggered_run.run["parameters"]["num_words"] == triggered_run.num_words
    [job_dir] = [path for path in triggered_run.output_dir.iterdir() if path.is_dir()]
    assert (triggered_run.output_dir / f"{job_dir.name}.manifest.json").is_file()  # the run's manifest beside it
    for sample in triggered_run.samples:
        output = job_dir / f"{sample.stem}_OUTPUT.txt"
        expected = deployment_stack.tutorial_top_words(sample, triggered_run.num_words)
        assert output.read_text("utf-8").split("\n")[2:4] == [f"{w}:\t{c}" for w, c in expected]
    artifacts = deployment_stack.api.artifacts(triggered_run.run_id)
    rows = {row["file"]: row["top words"] for row in artifacts["batchpipe-results"]["data"]}
    assert sorted(rows) == [f"{p.stem}_OUTPUT.txt" for p in triggered_run.samples]
    assert "--approve yes" in _summary_text(deployment_stack.api, triggered_run.run_id)
    progress = deployment_stack.api.post(
        "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [triggered_run.run_id]}, "type": {"any_": ["progress"]}}},
    )
    assert [artifact["data"] for artifact in progress] == [100.0]
    assert not deployment_stack.exists("pool", triggered_run.pool_id)
    # The run's own settings arrived as the `env` job variable, on top of the worker's environment.
    assert triggered_run.run["job_variables"]["env"]["BATCHPIPE_POLL_INTERVAL"] == "0.2"


def test_a_failing_task_fails_the_run_and_its_log_becomes_an_artifact(deployment_stack: Any, failed_run: Any) -> None:
    message = failed_run.run["state"]["message"]
    assert "1 task(s) failed: topn-doomed" in message
    artifacts = deployment_stack.api.artifacts(failed_run.run_id)
    failures = str(artifacts["batchpipe-failed-tasks"]["data"])
    assert "topn-doomed" in failures
    assert "exit code 3" in failures
    # The other task's output is still downloaded and reported, and the summary says what happened.
    assert [row["file"] for row in artifacts["batchpipe-results"]["data"]] == ["harbour_OUTPUT.txt"]
    assert "failed tasks: topn-doomed" in str(artifacts["batchpipe-summary"]["data"])


@pytest.mark.parametrize(("answer", "kept"), [("yes", False), ("no", True)])
def test_a_paused_run_follows_the_answer_given_from_another_process(
    deployment_stack: Any, tmp_path: Path, answer: str, kept: bool
) -> None:
    api = deployment_stack.api
    pool_id, env = deployment_stack.run_settings(f"approve-{answer}")
    job_id = f"job-approve-{answer}"
    run_id = api.run_deployment(
        DEPLOYMENT,
        {
            "inputs": [str(SAMPLES / "harbour.txt")],
            "output_dir": str(tmp_path),
            "approval": "wait",
            "pool_id": pool_id,
            "job_id": job_id,
        },
        env,
    )
    api.wait_for_state(run_id, "PAUSED", timeout=120)
    assert deployment_stack.exists("job", job_id)
    assert deployment_stack.exists("pool", pool_id)

    approve = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", "approve", run_id, answer, "--comment", "from the tests"],
        env=deployment_stack.client_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert approve.returncode == 0, approve.stdout + approve.stderr

    api.wait_for_state(run_id, "COMPLETED", timeout=60)
    assert deployment_stack.exists("job", job_id) is kept
    assert deployment_stack.exists("pool", pool_id) is kept
    summary = _summary_text(api, run_id)
    assert "from the tests" in summary
    assert f"`{pool_id}` ({'kept' if kept else 'deleted'})" in summary
    if kept:
        deployment_stack.batch().begin_delete_pool(pool_id, polling_interval=0).result()


def test_nobody_answering_applies_the_default_and_the_run_completes(deployment_stack: Any, tmp_path: Path) -> None:
    api = deployment_stack.api
    pool_id, env = deployment_stack.run_settings("approval-timeout")
    env |= {"BATCHPIPE_APPROVAL_TIMEOUT": "2", "BATCHPIPE_DELETE_JOB_ON_APPROVAL_TIMEOUT": "false"}
    job_id = "job-approval-timeout"
    run_id = api.run_deployment(
        DEPLOYMENT,
        {
            "inputs": [str(SAMPLES / "orchard.txt")],
            "output_dir": str(tmp_path),
            "approval": "wait",
            "pool_id": pool_id,
            "job_id": job_id,
        },
        env,
    )

    api.wait_for_state(run_id, "COMPLETED", timeout=120)
    assert deployment_stack.exists("job", job_id)  # BATCHPIPE_DELETE_JOB_ON_APPROVAL_TIMEOUT=false
    assert not deployment_stack.exists("pool", pool_id)  # the default: an idle pool costs money
    summary = _summary_text(api, run_id)
    assert "timeout (configured default)" in summary
    assert any("Waiting for approval" in line for line in api.logs(run_id))


MAP_DEPLOYMENT = "batchpipe-map/on-demand"


def test_prefect_yaml_deploys_the_general_workload_flow_unscheduled(deployment_stack: Any) -> None:
    deployment = deployment_stack.api.deployment(MAP_DEPLOYMENT)

    assert deployment["work_pool_name"] == "batchpipe"
    assert deployment["entrypoint"] == "flows/batch_map.py:batch_map"
    assert deployment["parameters"] == {
        "inputs": ["examples/checksum/data"],
        "command": "{algo}sum {input} > {output_dir}/{input_name}.{algo}",
        "output_patterns": ["{input_name}.{algo}"],
        "parameters": {"algo": "sha256"},
        "output_dir": "outputs",
        "approval": "wait",
        "keep_containers": False,
    }
    properties = deployment["parameter_openapi_schema"]["properties"]
    assert {"inputs", "command", "output_patterns", "image", "app", "pool_id"} <= set(properties)
    assert set(deployment["parameter_openapi_schema"]["required"]) == {"inputs", "command", "output_patterns"}
    assert all(properties[name].get("description") for name in properties)  # the UI form shows them
    assert deployment["schedules"] == []


def test_a_run_of_the_general_workload_deployment_completes_with_verified_outputs(
    deployment_stack: Any, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "nested").mkdir(parents=True)
    contents = {"one.txt": b"first input\n", "nested/two.bin": bytes(range(256)) * 3}
    for key, data in contents.items():
        (inputs / key).write_bytes(data)
    output_dir = tmp_path / "outputs"
    pool_id, env = deployment_stack.run_settings("map-deployment")
    api = deployment_stack.api
    run_id = api.run_deployment(
        MAP_DEPLOYMENT,
        {
            "inputs": [str(inputs)],
            "output_dir": str(output_dir),
            "parameters": {"algo": "sha512"},  # the deployment's other defaults: command, output_patterns
            "approval": "yes",
            "pool_id": pool_id,
        },
        env,
    )

    run = api.wait_for_state(run_id, "COMPLETED", timeout=120)
    assert run["parameters"]["command"] == "{algo}sum {input} > {output_dir}/{input_name}.{algo}"
    [run_dir] = [path for path in output_dir.iterdir() if path.is_dir()]
    for key, data in contents.items():
        output = run_dir / f"{key}.sha512"
        assert output.read_text("utf-8") == f"{hashlib.sha512(data).hexdigest()}  {key}\n"
    manifest = json.loads((run_dir / "manifest.json").read_text("utf-8"))
    assert manifest["complete"] is True
    assert sorted(entry["key"] for entry in manifest["inputs"]) == sorted(contents)
    assert not deployment_stack.exists("pool", pool_id)  # approval yes deletes it
