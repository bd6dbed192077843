"""The general flow on Azurite + the local Batch service: the two example workloads, reruns after every approval
answer, lost outputs, deleted jobs and containers, and a failing input."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from prefect import flow

from batchpipe import batch_map
from batchpipe.errors import PipelineFailed
from batchpipe.local import LocalEndpoints
from batchpipe.services import PROJECT_ROOT
from batchpipe.settings import load_settings
from batchpipe.workload import attempt_task_id, resolve_map_inputs, run_id_for
from flows.approval import Decision
from flows.batch_map import MapResult, build_spec, run_map
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]
EXAMPLES = PROJECT_ROOT / "examples"


def _batch(endpoints: LocalEndpoints) -> BatchClient:
    credential = AzureNamedKeyCredential(endpoints.batch_account_name, endpoints.batch_account_key)
    return BatchClient(endpoint=endpoints.batch_url, credential=credential)


def _blobs(endpoints: LocalEndpoints) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(endpoints.storage.connection_string)


@pytest.fixture
def cli_on_the_test_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI in this process uses the session's Prefect API (else it starts a temporary server of its own)."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))


def _task_ids(client: BatchClient, job_id: str) -> list[str]:
    try:
        return sorted(t.id for t in client.list_tasks(job_id))
    except ResourceNotFoundError:
        return []


@pytest.mark.usefixtures("cli_on_the_test_api")
def test_the_shell_example_through_the_cli_checksums_every_file_into_a_mirrored_tree(
    pipeline_env: LocalEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from batchpipe.cli import app

    monkeypatch.setenv("CHECK_TOKEN", "s3cret-value")
    data = EXAMPLES / "checksum" / "data"
    result = CliRunner().invoke(
        app,
        [
            "map",
            "--input",
            str(data),
            "--command",
            'test "$CHECK_TOKEN" = s3cret-value && {algo}sum {input} > {output_dir}/{input_name}.{algo}',
            "--output-pattern",
            "{input_name}.{algo}",
            "--param",
            "algo=sha256",
            "--env",
            "LC_ALL=C",
            "--secret",
            "CHECK_TOKEN",
            "--required-slots",
            "1",
            "--max-wall-clock",
            "5m",
            "--retries",
            "0",
            "--pool-id",
            os.environ["BATCHPIPE_POOL_ID"],
            "--keep-containers",
            "--approve",
            "yes",
            "--target",
            "azure",  # the services are already running (the test's fixtures): do not start a local stack
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-value" not in result.output
    [run_dir] = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    expected = {"alpha.txt.sha256", "beta.csv.sha256", "reports/q1.txt.sha256"}
    assert {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()} == expected | {
        "manifest.json"
    }
    for name in expected:
        source = data / name.removesuffix(".sha256")
        line = (run_dir / name).read_text()
        assert line == f"{hashlib.sha256(source.read_bytes()).hexdigest()}  {name.removesuffix('.sha256')}\n"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["run_id"] == run_dir.name
    assert [i["key"] for i in manifest["inputs"]] == ["alpha.txt", "beta.csv", "reports/q1.txt"]
    assert all(i["task"]["exit_code"] == 0 and i["task"]["duration_seconds"] is not None for i in manifest["inputs"])
    assert manifest["inputs"][2]["outputs"][0]["blob"] == f"{run_dir.name}/reports/q1.txt.sha256"
    assert "3 ran" in result.output
    assert "Job map-" in result.output
    # The secret reached the task as an environment setting, never its command line; containers were kept.
    names = {c.name for c in _blobs(pipeline_env).list_containers()}
    assert os.environ["BATCHPIPE_OUTPUT_CONTAINER"] in names


@pytest.mark.usefixtures("cli_on_the_test_api")
def test_the_zipapp_example_renders_markdown_with_its_bundled_dependency(
    pipeline_env: LocalEndpoints, tmp_path: Path
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("md2html_build", EXAMPLES / "markdown_html" / "build.py")
    assert spec is not None
    assert spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    app = build.build(tmp_path / "md2html.pyz")

    summary = _map_cli(
        *("--input", str(EXAMPLES / "markdown_html" / "docs"), "--app", str(app)),
        *("--command", "python3 {app} {input} {output_dir}/{input_stem}.html --title {title}"),
        *("--output-pattern", "{input_stem}.html", "--param", "title=Example docs"),
        *("--env", "MD2HTML_FOOTER=made by batchpipe", "--output", str(tmp_path / "out")),
    )
    [out] = (tmp_path / "out").iterdir()
    page = (out / "guide" / "options.html").read_text()
    assert "<h1>Options</h1>" in page
    assert "<title>Example docs</title>" in page
    task_id = attempt_task_id("map", "guide/options.md", 0)
    assert f"<footer>{task_id} made by batchpipe</footer>" in page
    assert "<em>batchpipe</em>" in (out / "index.html").read_text()
    assert "job map-" in summary.lower()
    assert "containers: deleted" in summary


def _map_cli(*arguments: str) -> str:
    """``batchpipe map ... --approve yes --target azure`` in this process (the fixtures' services); its output."""
    from typer.testing import CliRunner

    from batchpipe.cli import app

    result = CliRunner().invoke(app, ["map", *arguments, "--approve", "yes", "--target", "azure"])
    assert result.exit_code == 0, result.output
    return result.output


@flow(name="reconcile-test")
def _run_with_answer(inputs: list[str], output_dir: str, answer: Decision, keep_containers: bool) -> MapResult:
    settings = load_settings()
    files = resolve_map_inputs(inputs)
    spec = build_spec("wc -c < {input} > {output_dir}/{input_name}.count", ["{input_name}.count"], retries=0)
    run_id = run_id_for(files, spec.recipe() | {"pool": settings.pool_id}, prefix="map")
    return run_map(
        settings,
        files,
        spec,
        run_id,
        Path(output_dir) / run_id,
        "yes",
        keep_containers,
        lambda *args: answer,
    )


def _history(result: MapResult) -> dict[str, list[str]]:
    return {o.item.blob_name: o.history for o in result.outcomes}


def test_reruns_after_every_approval_answer_reuse_download_or_redo_each_input(
    pipeline_env: LocalEndpoints, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("aaaa")
    (tmp_path / "in" / "b.txt").write_text("bb")
    inputs, out = [str(tmp_path / "in")], str(tmp_path / "out")
    batch, blobs = _batch(pipeline_env), _blobs(pipeline_env)
    output_container = blobs.get_container_client(os.environ["BATCHPIPE_OUTPUT_CONTAINER"])

    def run(answer: tuple[bool, bool, str], keep: bool = True) -> MapResult:
        return _run_with_answer(inputs, out, Decision(*answer), keep)

    first = run((False, False, "no"))
    run_id = first.run_id
    assert [o.item.blob_name for o in first.outcomes if o.outputs] == ["a.txt", "b.txt"]
    assert (first.output_dir / "a.txt.count").read_text().strip() == "4"
    assert _task_ids(batch, run_id) == sorted(attempt_task_id("map", k, 0) for k in ("a.txt", "b.txt"))

    # A local output lost, the container kept: downloaded again, no task. Answer: delete the pool only.
    (first.output_dir / "a.txt.count").unlink()
    second = run((False, True, "pool-only"))
    assert _history(second) == {"a.txt": ["downloaded and verified"], "b.txt": ["reused: outputs verified on disk"]}
    assert (second.job, second.pool) == ("kept", "deleted")
    assert len(_task_ids(batch, run_id)) == 2

    # An output lost everywhere while its task had succeeded (the job completed): a new attempt in the next job,
    # on a new pool. Answer: delete the jobs only.
    (first.output_dir / "b.txt.count").unlink()
    output_container.delete_blob(f"{run_id}/b.txt.count")
    third = run((True, False, "job-only"))
    submitted, downloaded = third.outcomes[1].history
    assert downloaded == "downloaded and verified"
    assert submitted.startswith(f"submitted {attempt_task_id('map', 'b.txt', 1)}: ")
    assert "succeeded but its outputs are not in storage" in submitted
    assert third.job_ids == [run_id, f"{run_id}-2"]
    assert (first.output_dir / "b.txt.count").read_text().strip() == "2"
    assert (third.job, third.pool) == ("deleted", "kept")
    assert _task_ids(batch, run_id) == []  # both jobs were deleted

    # Blobs lost while their container stays (as Azurite loses acknowledged blobs when killed): the input is uploaded
    # again although Prefect's upload cache remembers it, and its task runs again (in a recreated first job).
    (first.output_dir / "a.txt.count").unlink()
    output_container.delete_blob(f"{run_id}/a.txt.count")
    blobs.get_container_client(os.environ["BATCHPIPE_INPUT_CONTAINER"]).delete_blob("a.txt")
    lost = run((False, False, "no"))
    assert lost.outcomes[0].history[0].startswith(f"submitted {attempt_task_id('map', 'a.txt', 0)}: no task yet")
    assert (lost.uploaded, lost.job_ids) == (1, [run_id])
    assert (first.output_dir / "a.txt.count").read_text().strip() == "4"

    # Every local output gone, the outputs still in storage: both downloaded, then everything is deleted.
    for name in ("a.txt.count", "b.txt.count"):
        (first.output_dir / name).unlink()
    fourth = run((True, True, "yes"), keep=False)
    assert all(h == ["downloaded and verified"] for h in _history(fourth).values())
    assert (fourth.job, fourth.pool, fourth.containers) == ("deleted", "deleted", "deleted")

    # After the containers, the jobs and the pool are gone: recreated, and the first job id is free again.
    (first.output_dir / "a.txt.count").unlink()
    fifth = run((False, False, "no"), keep=False)
    assert fifth.outcomes[0].history[0].startswith(f"submitted {attempt_task_id('map', 'a.txt', 0)}: no task yet")
    assert fifth.outcomes[1].reused
    assert fifth.job_ids == [run_id]
    assert fifth.job_created
    assert fifth.pool_created
    manifest = json.loads(fifth.manifest_path.read_text())
    assert (manifest["complete"], manifest["counts"]) == (True, {"verified": 2, "reused": 1, "missing": 0})
    batch.begin_delete_job(run_id, polling_interval=0).result()
    batch.begin_delete_pool(fifth.pool_id, polling_interval=0).result()


def _task_run_states(flow_run_id: UUID | None) -> dict[str, list[tuple[str, str | None]]]:
    """Task name → (state type, state message) of each of its runs in the flow run, read through the Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    assert flow_run_id is not None

    def final_states() -> list[Any]:
        # The API records task run states from the run's events, a moment after the flow run ends: wait for them.
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return runs if all(run.state is not None and run.state.is_final() for run in runs) else []

    states: dict[str, list[tuple[str, str | None]]] = {}
    for run in wait_until(
        final_states, timeout=30, what="the task runs' final states in the Prefect API", interval=0.2
    ):
        states.setdefault(run.name.rsplit("-", 1)[0], []).append((run.state.type.value, run.state.message))
    return states


def test_an_input_that_cannot_be_produced_is_named_with_why_and_the_others_are_kept(
    pipeline_env: LocalEndpoints, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.txt").write_text("ok\n")
    (tmp_path / "in" / "bad.txt").write_text("nope\n")
    arguments: dict[str, Any] = {
        "inputs": [str(tmp_path / "in")],
        "command": "grep ok {input} > {output_dir}/{input_name} || (echo no ok in {input} >&2; exit 1)",
        "output_patterns": ["{input_name}"],
        "retries": 0,
        "output_dir": str(tmp_path / "out"),
        "approval": "no",
    }
    state = batch_map(**arguments, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelineFailed)
    message = str(error)
    assert "\n" not in message
    bad_task = attempt_task_id("map", "bad.txt", 0)
    assert message.startswith(
        f"1 of 2 input(s) not produced: bad.txt: task {bad_task} failed (exit code 1), stderr: no ok in bad.txt; "
    )
    # In the UI the verify step is red with the same line; every other step is green.
    task_states = _task_run_states(state.state_details.flow_run_id)
    assert task_states.pop("verify-outputs") == [("FAILED", message)]
    assert {name: {kind for kind, _ in runs} for name, runs in task_states.items()} == {
        name: {"COMPLETED"} for name in task_states
    }
    assert {"monitor-tasks", "download-outputs"} <= set(task_states)
    [run_dir] = (tmp_path / "out").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    status = {i["key"]: (i["status"], i["task"]["exit_code"]) for i in manifest["inputs"]}
    assert status == {"bad.txt": ("missing", 1), "good.txt": ("verified", 0)}
    assert (run_dir / "good.txt").read_text() == "ok\n"

    # A rerun tries the failed input again (a new attempt), and only it.
    with pytest.raises(PipelineFailed, match=attempt_task_id("map", "bad.txt", 1)):
        batch_map(**arguments)
    batch = _batch(pipeline_env)
    assert len([t for j in (run_dir.name, f"{run_dir.name}-2") for t in _task_ids(batch, j)]) == 3
    for job in (run_dir.name, f"{run_dir.name}-2"):
        batch.begin_delete_job(job, polling_interval=0).result()
    batch.begin_delete_pool(os.environ["BATCHPIPE_POOL_ID"], polling_interval=0).result()


@pytest.mark.usefixtures("cli_on_the_test_api")
def test_an_application_package_is_refused_by_the_local_service_in_one_line(
    pipeline_env: LocalEndpoints, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from batchpipe.cli import app

    (tmp_path / "a.txt").write_text("a")
    result = CliRunner().invoke(
        app,
        [
            "map",
            *("--input", str(tmp_path / "a.txt"), "--app-package", "ffmpeg:4.3", "--output-pattern", "out.txt"),
            *("--command", "{app}/ffmpeg -i {input} {output_dir}/out.txt", "--approve", "yes", "--target", "azure"),
            *("--output", str(tmp_path / "out")),
        ],
    )
    assert result.exit_code == 4, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "NotImplemented" in line
    assert "application packages" in line


@pytest.mark.usefixtures("cli_on_the_test_api")
def test_the_container_example_runs_every_task_in_the_image(
    pipeline_env: LocalEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch_emulator.node.containers.busybox import IMAGE_NAME, BusyboxMissingError, ensure_busybox_image
    from batch_emulator.node.containers.runtime import RuntimeNotFoundError, detect_runtime

    try:
        ensure_busybox_image(detect_runtime(None, tmp_path / "containers-conf"))
    except (RuntimeNotFoundError, BusyboxMissingError) as error:
        pytest.skip(f"container tasks need a container runtime and busybox: {error}")
    monkeypatch.setenv("BATCHPIPE_IMAGE", "ubuntu-hpc:22.04")
    data = EXAMPLES / "container" / "data"
    _map_cli(
        *("--input", str(data), "--image", IMAGE_NAME, "--output", str(tmp_path / "out")),
        *("--command", "wc -w < {input} > {output_dir}/{input_name}.words", "--output-pattern", "{input_name}.words"),
    )
    [out] = (tmp_path / "out").iterdir()
    assert (out / "fox.txt.words").read_text().strip() == "9"
    assert (out / "hamlet.txt.words").read_text().strip() == "6"


def test_blobs_already_in_storage_are_inputs_without_being_uploaded(
    pipeline_env: LocalEndpoints, tmp_path: Path
) -> None:
    source = _blobs(pipeline_env).get_container_client(f"src-{os.environ['BATCHPIPE_POOL_ID'].removeprefix('pool-')}")
    source.create_container()
    source.upload_blob("incoming/2024/jan.csv", b"1,2\n")
    source.upload_blob("incoming/feb.csv", b"3,4\n")
    source.upload_blob("elsewhere.csv", b"5\n")
    (tmp_path / "local.csv").write_text("6\n")

    state = batch_map(
        inputs=[f"blob://{source.container_name}/incoming/", str(tmp_path / "local.csv")],
        command="cp {input} {output_dir}/{input_name}.copy",
        output_patterns=["{input_name}.copy"],
        output_dir=str(tmp_path / "out"),
        approval="yes",
        keep_containers=True,
        return_state=True,
    )
    summary = state.result()
    assert [kind for kind, _ in _task_run_states(state.state_details.flow_run_id)["verify-outputs"]] == ["COMPLETED"]
    out = Path(summary["output_dir"])
    assert (out / "2024/jan.csv.copy").read_bytes() == b"1,2\n"  # keys are relative to the prefix's directory
    assert (out / "feb.csv.copy").read_bytes() == b"3,4\n"
    assert (out / "local.csv.copy").read_text() == "6\n"
    manifest = json.loads((out / "manifest.json").read_text())
    sources = {i["key"]: i["source"] for i in manifest["inputs"]}
    assert sources["feb.csv"] == f"blob://{source.container_name}/incoming/feb.csv"
    uploaded = {
        b.name for b in _blobs(pipeline_env).get_container_client(os.environ["BATCHPIPE_INPUT_CONTAINER"]).list_blobs()
    }
    assert uploaded == {"local.csv"}
