"""Snakemake's Azure Batch executor (snakemake-executor-plugin-azure-batch 0.3) makes its calls with the SDKs it pins.

The plugin pins ``azure-batch`` 14.2 (``BatchServiceClient``) and ``azure-mgmt-batch`` 17.x and authenticates
with Entra ID tokens only. ``clients/snakemake_calls.py`` makes its calls in its order from ``.venv-v14``
(``constraints-v14.txt`` pins both): the container pool through Resource Manager (a start task downloaded from
Azurite through a SAS, a Docker-compatible container configuration that prefetches the image, classic node
communication), a job with ``maxTaskRetryCount`` 0, container tasks (``--rm``, admin auto-user, environment
settings) on the data plane with a Bearer token, the polling of pool resize errors, node start task files
(``/startup/stderr.txt``, with the leading slash the plugin writes), task state, stdout and stderr and failure
information, then termination and deletion. What the plugin itself needs that the local service cannot give is
in docs/emulator.md ("Clients"). Skipped only without a container runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, generate_blob_sas

from batch_emulator.errors import PoolBeingDeleted
from batch_emulator.models import pools
from batch_emulator.models.account import Account
from batch_emulator.node.containers.busybox import BusyboxMissingError, ensure_busybox_image
from batch_emulator.node.containers.runtime import RuntimeNotFoundError, detect_runtime
from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from batch_emulator.timefmt import now_ts
from batchpipe.local_identity import LocalDevelopmentCredential, LocalTls, ensure_local_tls
from batchpipe.services import AzuriteInfo
from tests.test_emulator.clients.environments import V14, client_python

pytestmark = pytest.mark.integration
CALLS = Path(__file__).parent / "clients" / "snakemake_calls.py"
#: The resource the plugin asks tokens for (``constant.AZURE_BATCH_RESOURCE_ENDPOINT``).
BATCH_RESOURCE = "https://batch.core.windows.net/"


@pytest.fixture(scope="module")
def container_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The local busybox test image (skips only without a container runtime or busybox)."""
    try:
        return ensure_busybox_image(detect_runtime(None, tmp_path_factory.mktemp("containers-conf")))
    except (RuntimeNotFoundError, BusyboxMissingError) as error:
        pytest.skip(f"the Snakemake executor test needs a container runtime and busybox: {error}")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return ensure_local_tls(tmp_path_factory.mktemp("snakemake-tls"))


@pytest.fixture(scope="module")
def service(tls: LocalTls) -> Iterator[ThreadedEmulator]:
    """The local service in its development Entra ID mode (https, Bearer tokens), as the plugin needs it."""
    config = EmulatorConfig(
        port=0, allocation_seconds=0.05, certfile=tls.cert_file, keyfile=tls.key_file, allow_bearer=True
    )
    with ThreadedEmulator(config) as running:
        yield running


@pytest.fixture(scope="module")
def start_task_url(azurite: AzuriteInfo) -> Iterator[str]:
    """A SAS URL of the node start task script (the plugin's ``--azure-batch-node-start-task-url``)."""
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = blobs.create_container(f"snakemake-{uuid.uuid4().hex[:8]}")
    container.upload_blob("start_task.sh", b'echo "node ready"\necho "setup note" >&2\n')
    sas = generate_blob_sas(
        azurite.account_name,
        container.container_name,
        "start_task.sh",
        account_key=azurite.account_key,
        permission="r",
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    yield f"{azurite.blob_endpoint}/{container.container_name}/start_task.sh?{sas}"
    container.delete_container()


def test_snakemake_executor_calls(
    container_image: str, tls: LocalTls, service: ThreadedEmulator, start_task_url: str
) -> None:
    credential = LocalDevelopmentCredential()
    settings = {
        "url": service.url,
        "batch_token": credential.get_token(BATCH_RESOURCE).token,
        "arm_token": credential.get_token("https://management.azure.com/.default").token,
        "subscription_id": "00000000-0000-4000-8000-000000000001",
        "resource_group": "snakemake-rg",
        "account_name": service.account_name,
        "start_task_url": start_task_url,
        "image": container_image,
    }
    run = subprocess.run(
        [str(client_python(V14)), str(CALLS), json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "REQUESTS_CA_BUNDLE": str(tls.ca_file)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert seen["resizeErrors"] == []
    assert "ComputeNodeState.unusable" not in seen["nodeStates"]
    assert seen["startTask"] == "TaskExecutionResult.success"
    assert seen["startStdout"] == "node ready\n"
    # The plugin's path with a leading slash names no file here (the local service takes file paths relative to
    # the node's root, as it lists them); the plugin reads it as "" then. What Azure answers is not recorded.
    assert seen["startStderr"] == {"error": "FileNotFound"}
    rule_a, rule_b = seen["tasks"]["rule_a"], seen["tasks"]["rule_b"]
    assert rule_a == {
        "result": "TaskExecutionResult.success",
        "stdout": "rule a ran in rule_a\n",
        "stderr": "",
        "failure": None,
    }
    assert (rule_b["result"], rule_b["stderr"]) == ("TaskExecutionResult.failure", "rule b failed\n")
    assert rule_b["failure"]["category"] == "ErrorCategory.user_error"
    assert rule_b["failure"]["code"] == "FailureExitCode"
    assert seen["poolExists"] in (False, "PoolState.deleting")


def test_a_pool_is_deleted_once(tmp_path: Path) -> None:
    """A delete of a pool already being deleted is refused with 409 ``PoolBeingDeleted``, as the REST reference says
    (the plugin's cleanup ignores that code); the local service removes a pool too fast to show it over HTTP."""
    account, now = Account("acct", tmp_path), now_ts()
    body = {
        "id": "snakepool",
        "vmSize": "standard_d2_v3",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
            "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        },
    }
    pools.create_pool(account, body, now)
    assert pools.delete_pool(account, "snakepool", now).state == "deleting"
    with pytest.raises(PoolBeingDeleted):
        pools.delete_pool(account, "SNAKEPOOL", now)
