"""The track-1 clients azure-batch 11.0, 12.0 and 13.0 (``BatchServiceClient``, msrest) run a whole workflow unchanged.

They live in an environment of their own (``.venv-v13``, pinned by ``constraints-v13.txt``; ``make deps`` builds
it, and this module builds it when it is missing): 13.0 installed normally, 11.0 and 12.0 (same dependencies)
each in ``.venv-v13/azure-batch-<version>``, put first on ``PYTHONPATH``. The workflow
(``clients/track1_workflow.py``): a pool with a start task that downloads a script from Azurite through a SAS,
a job, tasks whose resource files are a blob SAS and a container SAS with a prefix and whose output files go
to a container SAS, odata ``$filter``/``$select`` on lists and gets, a ``client-request-id`` echoed back,
paging through ``odata.nextLink``, stdout and file properties, a start task's stdout, a service error, task
termination, deletion.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from batchpipe.services import AzuriteInfo
from tests.test_emulator.clients.environments import V13, beside_path, client_python

pytestmark = pytest.mark.integration
WORKFLOW = Path(__file__).parent / "clients" / "track1_workflow.py"
#: azure-batch version -> the api-version it sends.
CLIENTS = {"11.0.0": "2021-06-01.14.0", "12.0.0": "2022-01-01.15.0", "13.0.0": "2022-10-01.16.0"}
TASKS = 3


@pytest.fixture(scope="module")
def v13_python() -> Path:
    """The interpreter of ``.venv-v13`` (built here, as ``make deps`` does, when missing)."""
    return client_python(V13)


@pytest.fixture(scope="module")
def service() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as running:
        yield running


@pytest.fixture(scope="module")
def storage(azurite: AzuriteInfo) -> Iterator[tuple[ContainerClient, dict[str, Any]]]:
    """A container in Azurite with the workflow's inputs, and the SAS URLs the workflow is given."""
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = blobs.create_container(f"track1-{uuid.uuid4().hex[:8]}")
    container.upload_blob("setup.sh", b'echo "$GREETING"\n')
    container.upload_blob("shared/common.txt", b"common\n")
    for index in range(TASKS):
        container.upload_blob(f"inputs/input-{index}.txt", f"input {index}\n".encode())
    expiry = datetime.now(UTC) + timedelta(hours=1)
    name, base = container.container_name, f"{azurite.blob_endpoint}/{container.container_name}"

    def blob_url(blob: str) -> str:
        sas = generate_blob_sas(
            azurite.account_name, name, blob, account_key=azurite.account_key, permission="r", expiry=expiry
        )
        return f"{base}/{blob}?{sas}"

    def container_url(permission: ContainerSasPermissions) -> str:
        sas = generate_container_sas(
            azurite.account_name, name, account_key=azurite.account_key, permission=permission, expiry=expiry
        )
        return f"{base}?{sas}"

    urls = {
        "script": blob_url("setup.sh"),
        "inputs": [blob_url(f"inputs/input-{index}.txt") for index in range(TASKS)],
        "container": container_url(ContainerSasPermissions(read=True, list=True)),
        "output": container_url(ContainerSasPermissions(write=True, create=True)),
    }
    yield container, urls
    container.delete_container()


@pytest.mark.parametrize("version", list(CLIENTS))
def test_track1_client_workflow(
    version: str,
    v13_python: Path,
    service: ThreadedEmulator,
    storage: tuple[ContainerClient, dict[str, Any]],
) -> None:
    container, urls = storage
    environment = dict(os.environ)
    if f"azure-batch=={version}" in V13.beside:
        environment["PYTHONPATH"] = str(beside_path(V13, f"azure-batch=={version}"))
    run = subprocess.run(
        [str(v13_python), str(WORKFLOW), service.url, service.account_name, service.account_key, json.dumps(urls)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert (seen["version"], seen["apiVersion"]) == (version, CLIENTS[version])
    assert seen["added"] == ["TaskAddStatus.success"] * (TASKS - 1)
    assert seen["exitCodes"] == [0] * TASKS
    assert seen["stdout"] == {f"task{i}": f"ready\ninput {i}\ncommon\n" for i in range(TASKS)}
    assert seen["paged"] == [f"task{i}" for i in range(TASKS)]  # two pages of at most 2, through odata.nextLink
    assert seen["files"] == [
        "fileuploaderr.txt",
        "fileuploadout.txt",
        "stderr.txt",
        "stdout.txt",
        "wd/input.txt",
        "wd/out-0.txt",
        "wd/shared/common.txt",
    ]
    assert seen["stdoutLength"] == len("ready\ninput 0\ncommon\n")
    assert seen["startTask"] == ["TaskExecutionResult.success"]
    assert seen["startStdout"] == "ready\n"
    assert seen["pool"] == {"vmSize": "standard_ds1_v2", "slots": 2, "state": "PoolState.active"}
    assert seen["selectedOnly"] is True
    assert seen["succeeded"] == TASKS
    assert seen["requestIdEchoed"] is True
    assert seen["missingTask"] == "TaskNotFound"
    uploaded = {
        blob.name: container.download_blob(blob.name).readall()
        for blob in container.list_blobs(name_starts_with=f"results-{version}/")
    }
    assert uploaded == {f"results-{version}/out-{i}.txt": f"input {i}\n".encode() for i in range(TASKS)}
