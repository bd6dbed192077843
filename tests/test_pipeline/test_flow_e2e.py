"""The whole pipeline on Azurite + the local Batch service, through the real SDKs."""

from __future__ import annotations

import os
import string
import threading
import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from batchpipe.errors import InputError
from batchpipe.local import LocalEndpoints
from batchpipe.naming import resolve_inputs, task_id_for
from batchpipe.services import PROJECT_ROOT
from flows.pipeline import top_words_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]
SAMPLES = PROJECT_ROOT / "samples"


def tutorial_top_words(path: Path, n: int) -> list[tuple[str, int]]:
    """The tutorial's counting, written out independently: read all, split, strip ASCII punctuation."""
    words = [token.strip(string.punctuation) for token in path.read_text("utf-8").split()]
    return Counter(words).most_common(n)


def _batch(endpoints: LocalEndpoints) -> BatchClient:
    credential = AzureNamedKeyCredential(endpoints.batch_account_name, endpoints.batch_account_key)
    return BatchClient(endpoint=endpoints.batch_url, credential=credential)


def _blobs(endpoints: LocalEndpoints) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(endpoints.storage.connection_string)


def _exists(call: object, *args: str) -> bool:
    try:
        call(*args)  # type: ignore[operator]
    except ResourceNotFoundError:
        return False
    return True


def test_full_run_produces_the_tutorial_outputs_and_cleans_up(pipeline_env: LocalEndpoints, tmp_path: Path) -> None:
    summary = top_words_pipeline(inputs=[str(SAMPLES)], output_dir=str(tmp_path), num_words=3, approval="yes")

    assert [o["file"] for o in summary["outputs"]] == [
        "harbour_OUTPUT.txt",
        "observatory_OUTPUT.txt",
        "orchard_OUTPUT.txt",
    ]
    for item in summary["outputs"]:
        source = SAMPLES / item["file"].replace("_OUTPUT", "")
        expected = tutorial_top_words(source, 3)
        assert [tuple(w) for w in item["top_words"]] == expected
        lines = Path(item["path"]).read_text("utf-8").split("\n")
        assert lines[:2] == ["Word\tCount", "-" * 30]
        assert lines[2:5] == [f"{w}:\t{c}" for w, c in expected]
        assert lines[5] == "-" * 30
        task_id = task_id_for(resolve_inputs([str(source)])[0])
        assert lines[6].startswith("Node: ")
        assert lines[7:10] == [f"Task: {task_id}", f"Job:  {summary['job_id']}", f"Pool: {summary['pool_id']}"]
    assert summary["containers"] == "deleted"
    assert (summary["job"], summary["pool"]) == ("deleted", "deleted")
    batch = _batch(pipeline_env)
    assert not _exists(batch.get_job, summary["job_id"])
    assert not _exists(batch.get_pool, summary["pool_id"])
    names = {c.name for c in _blobs(pipeline_env).list_containers()}
    assert not any(n.endswith(summary["pool_id"].removeprefix("pool-")) for n in names)


def test_rerun_reuses_job_pool_and_uploads_without_duplicates(pipeline_env: LocalEndpoints, tmp_path: Path) -> None:
    first = top_words_pipeline(inputs=[str(SAMPLES)], output_dir=str(tmp_path), approval="no", keep_containers=True)
    container = _blobs(pipeline_env).get_container_client(os.environ["BATCHPIPE_INPUT_CONTAINER"])
    etags = {b.name: b.etag for b in container.list_blobs()}

    second = top_words_pipeline(inputs=[str(SAMPLES)], output_dir=str(tmp_path), approval="no", keep_containers=True)
    assert second["job_id"] == first["job_id"]
    assert (first["job_created"], second["job_created"]) == (True, False)
    assert (first["pool_created"], second["pool_created"]) == (True, False)
    assert (first["uploaded"], second["uploaded"]) == (4, 0)  # 3 inputs + the node app, then nothing
    assert {b.name: b.etag for b in container.list_blobs()} == etags
    assert len(second["outputs"]) == 3
    batch = _batch(pipeline_env)
    assert sorted(t.id for t in batch.list_tasks(first["job_id"])) == sorted(
        task_id_for(item) for item in resolve_inputs([str(SAMPLES)])
    )
    batch.begin_delete_job(first["job_id"], polling_interval=0).result()
    batch.begin_delete_pool(first["pool_id"], polling_interval=0).result()


def test_no_inputs_is_refused_before_anything_is_created(pipeline_env: LocalEndpoints, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        top_words_pipeline(inputs=[str(tmp_path / "nothing.txt")], output_dir=str(tmp_path), approval="yes")
    assert os.environ["BATCHPIPE_POOL_ID"] not in {p.id for p in _batch(pipeline_env).list_pools()}
    assert os.environ["BATCHPIPE_INPUT_CONTAINER"] not in {c.name for c in _blobs(pipeline_env).list_containers()}


def test_approval_timeout_applies_the_default_and_the_run_completes(
    pipeline_env: LocalEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHPIPE_APPROVAL_TIMEOUT", "1")
    monkeypatch.setenv("BATCHPIPE_DELETE_JOB_ON_APPROVAL_TIMEOUT", "false")
    summary = top_words_pipeline(inputs=[str(SAMPLES / "harbour.txt")], output_dir=str(tmp_path), approval="wait")
    assert summary["decided_by"] == "timeout (configured default)"
    assert (summary["job"], summary["pool"]) == ("kept", "deleted")
    assert _exists(_batch(pipeline_env).get_job, summary["job_id"])


def test_approval_answered_through_the_api_is_followed(pipeline_env: LocalEndpoints, tmp_path: Path) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    answered: list[UUID] = []

    def answer_when_paused() -> None:
        deadline = time.monotonic() + 120
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                paused = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                    )
                )
                if paused:
                    resume_flow_run(paused[0].id, run_input={"delete_job": False, "delete_pool": True})
                    answered.append(paused[0].id)
                    return
                time.sleep(0.2)  # polling the API for the pause

    thread = threading.Thread(target=answer_when_paused, daemon=True)
    thread.start()
    summary = top_words_pipeline(inputs=[str(SAMPLES / "orchard.txt")], output_dir=str(tmp_path), approval="wait")
    thread.join(5)
    assert answered
    assert summary["decided_by"].startswith("approval")
    assert (summary["job"], summary["pool"]) == ("kept", "deleted")


def _flow_run_logs(flow_run_id: UUID) -> list[str]:
    """The flow run's log messages (its tasks' included), as the Prefect API (and so the UI) has them."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def test_an_unsupported_image_is_the_flow_runs_one_failure_line(
    pipeline_env: LocalEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow run not started by the CLI (Python, a deployment) reports the image once, not per step and flow."""
    from batchpipe.errors import ConfigurationError

    monkeypatch.setenv("BATCHPIPE_IMAGE", "debian:7")
    state = top_words_pipeline(
        inputs=[str(SAMPLES / "harbour.txt")], output_dir=str(tmp_path), approval="yes", return_state=True
    )
    assert state.is_failed()
    with pytest.raises(ConfigurationError, match=r"BATCHPIPE_IMAGE='debian:7'; the service offers: .*ubuntu:22\.04"):
        state.result()
    assert state.state_details.flow_run_id is not None
    logs = _flow_run_logs(state.state_details.flow_run_id)
    assert sum("no supported Linux image matches" in message for message in logs) == 1, logs
    assert not any("Traceback" in message or "Encountered exception" in message for message in logs), logs
    assert os.environ["BATCHPIPE_POOL_ID"] not in {p.id for p in _batch(pipeline_env).list_pools()}
