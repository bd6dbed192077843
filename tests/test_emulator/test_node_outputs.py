"""Output files are uploaded to a real Azurite container with a write-only SAS, per upload condition."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

from batch_emulator.node import outputs
from batch_emulator.node.outputs import PlannedUpload, plan_uploads, upload
from batchpipe.services import AzuriteInfo
from tests.test_emulator.node_runs import job_task, run

pytestmark = pytest.mark.integration

WRITES = (
    "/bin/bash -c 'mkdir -p out/sub && echo a > out/a.csv && echo b > out/sub/b.csv && echo log > run.log; exit {code}'"
)


def write_only_url(azurite: AzuriteInfo, container_name: str) -> str:
    sas = generate_container_sas(
        azurite.account_name,
        container_name,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{azurite.blob_endpoint}/{container_name}?{sas}"


def output(pattern: str, url: str, condition: str, path: str | None = None) -> dict[str, Any]:
    destination: dict[str, Any] = {"containerUrl": url}
    if path is not None:
        destination["path"] = path
    return {
        "filePattern": pattern,
        "destination": {"container": destination},
        "uploadOptions": {"uploadCondition": condition},
    }


def blobs(container: ContainerClient) -> dict[str, bytes]:
    return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}


def test_success_uploads_success_and_completion_files(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    url = write_only_url(azurite, container.container_name)
    spec = job_task(
        tmp_path,
        WRITES.format(code=0),
        output_files=[
            output("out/**/*.csv", url, "taskSuccess", path="results/task-1"),
            output("../std*.txt", url, "taskcompletion", path="logs/task-1"),
            output("run.log", url, "taskfailure", path="failed/run.log"),
        ],
    )
    result = run(spec)

    assert result.result == "success", result.failure_info
    assert blobs(container) == {
        "results/task-1/a.csv": b"a\n",
        "results/task-1/sub/b.csv": b"b\n",
        "logs/task-1/stdout.txt": b"",
        "logs/task-1/stderr.txt": b"",
    }
    assert "results/task-1/a.csv" in (result.task_dir / "fileuploadout.txt").read_text()
    assert (result.task_dir / "fileuploaderr.txt").read_text() == ""


def test_failure_uploads_failure_files_and_keeps_exit_code_failure(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    url = write_only_url(azurite, container.container_name)
    spec = job_task(
        tmp_path,
        WRITES.format(code=2),
        output_files=[
            output("out/*.csv", url, "tasksuccess"),
            output("run.log", url, "taskfailure", path="failed/run.log"),
            output("run.log", url, "taskcompletion"),
        ],
    )
    result = run(spec)

    assert result.exit_code == 2
    assert result.failure_info is not None
    assert result.failure_info["code"] == "FailureExitCode"
    assert blobs(container) == {"failed/run.log": b"log\n", "run.log": b"log\n"}


def test_pattern_without_matches_uploads_nothing(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    url = write_only_url(azurite, container.container_name)
    patterns = [output("missing.txt", url, "taskcompletion"), output("*.nope", url, "taskcompletion")]
    result = run(job_task(tmp_path, "/bin/true", output_files=patterns))

    assert result.result == "success"
    assert blobs(container) == {}


def test_hidden_files_only_match_explicitly_and_variables_expand(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    url = write_only_url(azurite, container.container_name)
    command = "/bin/bash -c 'echo v > visible.txt && echo h > .hidden.txt && echo s > $AZ_BATCH_NODE_SHARED_DIR/s.txt'"
    spec = job_task(
        tmp_path,
        command,
        output_files=[
            output("*.txt", url, "tasksuccess", path="plain"),
            output(".*.txt", url, "tasksuccess", path="dot"),
            output("$AZ_BATCH_NODE_SHARED_DIR/s.txt", url, "tasksuccess"),
        ],
    )
    result = run(spec)

    assert result.result == "success", result.failure_info
    assert set(blobs(container)) == {"plain/visible.txt", "dot/.hidden.txt", "s.txt"}


def test_missing_container_is_file_upload_container_not_found(tmp_path: Path, azurite: AzuriteInfo) -> None:
    url = write_only_url(azurite, f"absent-{uuid.uuid4().hex[:12]}")
    result = run(
        job_task(tmp_path, "/bin/bash -c 'echo x > out.txt'", output_files=[output("out.txt", url, "tasksuccess")])
    )

    assert result.exit_code == 0
    assert result.result == "failure"
    info = result.failure_info
    assert info is not None
    assert info["category"] == "usererror"
    assert info["code"] == "FileUploadContainerNotFound"
    assert url.split("sig=")[1].split("&")[0] not in repr(info)
    assert "404" in (result.task_dir / "fileuploaderr.txt").read_text()


def test_read_only_sas_cannot_upload(tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient) -> None:
    sas = generate_container_sas(
        azurite.account_name,
        container.container_name,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    url = f"{container.url}?{sas}"
    result = run(
        job_task(tmp_path, "/bin/bash -c 'echo x > out.txt'", output_files=[output("out.txt", url, "tasksuccess")])
    )

    info = result.failure_info
    assert info is not None
    assert info["code"] == "FileUploadMiscError"
    assert info["category"] == "usererror"
    assert "403" in info["message"]
    assert sas.split("sig=")[1].split("&")[0] not in repr(info)


def test_max_wall_clock_expiry_still_uploads_failure_logs(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    url = write_only_url(azurite, container.container_name)
    spec = job_task(
        tmp_path,
        "/bin/bash -c 'echo before; exec sleep 30'",
        output_files=[output("../stdout.txt", url, "taskfailure")],
    )
    result = run(replace(spec, max_wall_clock_seconds=0.3))

    assert result.failure_info is not None
    assert result.failure_info["code"] == "TaskEnded"
    assert blobs(container) == {"stdout.txt": b"before\n"}


def test_large_file_goes_up_as_blocks(
    tmp_path: Path, azurite: AzuriteInfo, container: ContainerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outputs, "SINGLE_PUT_LIMIT", 1000)
    monkeypatch.setattr(outputs, "BLOCK_SIZE", 700)
    data = bytes(range(256)) * 10
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    url = write_only_url(azurite, container.container_name)
    planned = PlannedUpload(local, url, "dir/big.bin", {"x-ms-blob-type": "BlockBlob"})

    assert upload(planned, threading.Event()) == len(data)
    assert blobs(container) == {"dir/big.bin": data}
    block_list = container.get_blob_client("dir/big.bin").get_block_list()[0]
    assert len(block_list) == 4


def planned_names(pattern: str, working_dir: Path, path: str | None = None) -> list[str]:
    spec = output(pattern, "http://127.0.0.1:1/c?sig=x", "taskcompletion", path=path)
    return [p.blob_name for p in plan_uploads(spec, working_dir, {"HERE": str(working_dir)})]


def test_patterns_under_a_directory_with_brackets(tmp_path: Path) -> None:
    working_dir = tmp_path / "run[1]" / "wd"
    (working_dir / "deep").mkdir(parents=True)
    for name in ("a.txt", "abc*", "deep/b.txt", "../stdout.txt"):
        (working_dir / name).write_text(name)

    assert planned_names("*.txt", working_dir) == ["a.txt"]
    assert planned_names("**/*.txt", working_dir, path="p") == ["p/a.txt", "p/deep/b.txt"]
    assert planned_names("abc[*]", working_dir) == ["abc*"]
    assert planned_names("../std*.txt", working_dir) == ["stdout.txt"]
    assert planned_names("$HERE/deep/*.txt", working_dir) == ["b.txt"]
    assert planned_names("deep/b.txt", working_dir, path="renamed.txt") == ["renamed.txt"]
