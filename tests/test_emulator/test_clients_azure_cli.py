"""The real Azure CLI (``az batch``, azure-cli 2.91) drives the local service with only its endpoint and key given.

Marked ``slow`` (``make test-slow``): the CLI is a ~730 MB environment of its own (``.venv-azure-cli``, pinned
by ``constraints-azure-cli.txt``; ``make azure-cli`` builds it in about two minutes, and this module builds it
when it is missing), and every ``az`` command starts a new interpreter. The normal suite exercises the CLI
another way: ``tests/conformance`` replays Microsoft's recordings of the CLI's own tests against the real
service (``cli_*.json``), and ``test_clients_rest.py`` sends the values the CLI sends (integers as strings).

Each command is given ``--account-endpoint``, ``--account-name`` and ``--account-key``, as a user would type
it; the CLI keeps its configuration in a temporary ``AZURE_CONFIG_DIR`` and sends no telemetry.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from tests.test_emulator.clients.environments import AZURE_CLI, client_python

pytestmark = [pytest.mark.integration, pytest.mark.slow]
IMAGE = "canonical:0001-com-ubuntu-server-jammy:22_04-lts"
UBUNTU = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts", "version": "latest"}

Az = Callable[..., Any]


@pytest.fixture(scope="module")
def az_executable() -> Path:
    """``az`` of ``.venv-azure-cli`` (built here, as ``make azure-cli`` does, when missing)."""
    return client_python(AZURE_CLI, timeout=1200).parent / "az"


@pytest.fixture(scope="module")
def service() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as running:
        yield running


@pytest.fixture(scope="module")
def az(az_executable: Path, service: ThreadedEmulator, tmp_path_factory: pytest.TempPathFactory) -> Az:
    """Run one ``az`` command against the service; returns its parsed JSON output (fails the test on an error)."""
    home = tmp_path_factory.mktemp("azure-cli")
    environment = {
        **os.environ,
        "AZURE_CONFIG_DIR": str(home / "config"),
        "AZURE_CORE_COLLECT_TELEMETRY": "no",
        "AZURE_CORE_NO_COLOR": "true",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    account = [
        "--account-endpoint",
        service.url,
        "--account-name",
        service.account_name,
        "--account-key",
        service.account_key,
    ]

    def run(*args: str, expect_error: bool = False) -> Any:
        done = subprocess.run(
            [str(az_executable), *args, *account, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=home,
            env=environment,
            check=False,
        )
        if expect_error:
            assert done.returncode != 0, done.stdout
            return done.stderr
        assert done.returncode == 0, f"az {' '.join(args)}: {done.stderr[-2000:]}"
        return json.loads(done.stdout) if done.stdout.strip() else None

    return run


def wait_for(az: Az, what: str, args: tuple[str, ...], condition: Callable[[Any], bool], timeout: float = 60) -> Any:
    """Repeat an ``az`` query until ``condition`` holds for its output (each command takes about half a second)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = az(*args)
        if condition(seen):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; last seen {seen!r}")
        time.sleep(0.2)  # polling interval of a condition with a deadline


def test_az_batch_pools_jobs_tasks_and_files(az: Az, tmp_path: Path) -> None:
    pool_json = tmp_path / "pool.json"
    pool_json.write_text(
        json.dumps(
            {
                "id": "cli-json-pool",
                "vmSize": "standard_d2s_v3",
                "virtualMachineConfiguration": {"imageReference": UBUNTU, "nodeAgentSKUId": "batch.node.ubuntu 22.04"},
                "targetDedicatedNodes": 1,
                "taskSlotsPerNode": 2,
                "startTask": {
                    "commandLine": "/bin/sh -c 'echo started from json'",
                    "waitForSuccess": True,
                    "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
                },
                "metadata": [{"name": "made-by", "value": "json"}],
            }
        )
    )
    az("batch", "pool", "create", "--json-file", str(pool_json))
    az(
        "batch", "pool", "create", "--id", "cli-flag-pool", "--vm-size", "standard_d2s_v3", "--image", IMAGE,
        "--node-agent-sku-id", "batch.node.ubuntu 22.04", "--target-dedicated-nodes", "1",
        "--start-task-command-line", "/bin/sh -c 'echo started from flags'", "--start-task-wait-for-success",
        "--metadata", "made-by=flags",
    )  # fmt: skip
    from_json = az("batch", "pool", "show", "--pool-id", "cli-json-pool")
    assert (from_json["vmSize"], from_json["taskSlotsPerNode"]) == ("standard_d2s_v3", 2)
    assert from_json["startTask"]["userIdentity"]["autoUser"] == {"scope": "pool", "elevationLevel": "admin"}
    assert from_json["metadata"] == [{"name": "made-by", "value": "json"}]
    from_flags = az("batch", "pool", "show", "--pool-id", "cli-flag-pool")
    assert from_flags["virtualMachineConfiguration"]["imageReference"] == UBUNTU
    assert from_flags["startTask"] == {"commandLine": "/bin/sh -c 'echo started from flags'", "waitForSuccess": True}
    assert from_flags["metadata"] == [{"name": "made-by", "value": "flags"}]

    az("batch", "pool", "resize", "--pool-id", "cli-flag-pool", "--target-dedicated-nodes", "2")
    resized = wait_for(
        az,
        "the resize to 2 nodes",
        ("batch", "pool", "show", "--pool-id", "cli-flag-pool"),
        lambda pool: pool["allocationState"] == "steady" and pool["currentDedicatedNodes"] == 2,
    )
    assert resized["targetDedicatedNodes"] == 2
    nodes = wait_for(
        az,
        "2 idle nodes",
        ("batch", "node", "list", "--pool-id", "cli-flag-pool"),
        lambda listed: [node["state"] for node in listed] == ["idle", "idle"],
    )
    assert [node["startTaskInfo"]["result"] for node in nodes] == ["success", "success"]
    node_stdout = tmp_path / "node-stdout.txt"
    az(
        "batch", "node", "file", "download", "--pool-id", "cli-flag-pool", "--node-id", nodes[0]["id"],
        "--file-path", "startup/stdout.txt", "--destination", str(node_stdout),
    )  # fmt: skip
    assert node_stdout.read_text() == "started from flags\n"

    update = tmp_path / "update.json"  # the shape of the CLI's own test data (batchUpdatePool.json)
    update.write_text(
        json.dumps(
            {
                "startTask": {"commandLine": "/bin/sh -c 'echo updated'", "waitForSuccess": True},
                "certificateReferences": [],
                "metadata": [],
                "applicationPackageReferences": [],
            }
        )
    )
    az("batch", "pool", "reset", "--pool-id", "cli-json-pool", "--json-file", str(update))
    reset = az("batch", "pool", "show", "--pool-id", "cli-json-pool")
    assert (reset["startTask"]["commandLine"], reset["startTask"]["waitForSuccess"]) == (
        "/bin/sh -c 'echo updated'",
        True,
    )
    assert "userIdentity" not in reset["startTask"]  # replaced as a whole
    assert "metadata" not in reset

    az("batch", "job", "create", "--id", "cli-job", "--pool-id", "cli-json-pool")
    az(
        "batch", "task", "create", "--job-id", "cli-job", "--task-id", "flaky",
        "--command-line", "/bin/sh -c 'echo trying; exit 3'", "--max-task-retry-count", "2",
    )  # fmt: skip
    tasks_json = tmp_path / "tasks.json"
    tasks_json.write_text(
        json.dumps(
            [
                {"id": "hello", "commandLine": "/bin/sh -c 'echo hello $WHO'",
                 "environmentSettings": [{"name": "WHO", "value": "cli"}]},
                {"id": "once", "commandLine": "/bin/sh -c 'exit 1'", "constraints": {"maxTaskRetryCount": 1}},
            ]
        )
    )  # fmt: skip
    added = az("batch", "task", "create", "--job-id", "cli-job", "--json-file", str(tasks_json))
    assert sorted((result["taskId"], result["status"]) for result in added) == [
        ("hello", "success"),
        ("once", "success"),
    ]

    listed = wait_for(
        az,
        "3 completed tasks",
        ("batch", "task", "list", "--job-id", "cli-job", "--filter", "state eq 'completed'", "--select", "id,state"),
        lambda tasks: len(tasks) == 3,
    )
    assert all(set(task) <= {"id", "state", "odata.metadata"} for task in listed)  # only what $select asked for
    flaky = az("batch", "task", "show", "--job-id", "cli-job", "--task-id", "flaky")
    assert flaky["constraints"]["maxTaskRetryCount"] == 2
    info = flaky["executionInfo"]
    assert (info["exitCode"], info["retryCount"], info["result"]) == (3, 2, "failure")
    assert info["failureInfo"]["code"] == "FailureExitCode"
    once = az("batch", "task", "show", "--job-id", "cli-job", "--task-id", "once")
    assert once["executionInfo"]["retryCount"] == 1
    counts = az("batch", "job", "task-counts", "show", "--job-id", "cli-job")
    assert counts["taskCounts"] == {"active": 0, "running": 0, "completed": 3, "succeeded": 1, "failed": 2}

    files = az("batch", "task", "file", "list", "--job-id", "cli-job", "--task-id", "hello")
    assert {item["name"] for item in files} >= {"stdout.txt", "stderr.txt"}
    stdout = tmp_path / "hello-stdout.txt"
    az(
        "batch", "task", "file", "download", "--job-id", "cli-job", "--task-id", "hello",
        "--file-path", "stdout.txt", "--destination", str(stdout),
    )  # fmt: skip
    assert stdout.read_text() == "hello cli\n"

    az("batch", "job", "delete", "--job-id", "cli-job", "--yes")
    az("batch", "pool", "delete", "--pool-id", "cli-flag-pool", "--yes")
    az("batch", "pool", "delete", "--pool-id", "cli-json-pool", "--yes")
    wait_for(az, "the pools to be deleted", ("batch", "pool", "list"), lambda pools: pools == [])
    assert az("batch", "job", "list") == []
    error = az("batch", "pool", "show", "--pool-id", "cli-flag-pool", expect_error=True)
    assert "(PoolNotFound) The specified pool does not exist." in error
