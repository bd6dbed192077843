"""Fault injection (spec, throttling, server errors, quotas, slow allocation) and the /_emulator admin endpoints."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from batch_emulator.app import create_app
from batch_emulator.faults import FaultInjector, FaultSpec, FaultSpecError
from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from batch_emulator.service import BatchService


def put_faults(emulator: ThreadedEmulator, spec: str) -> dict[str, Any]:
    response = httpx.put(f"{emulator.url}/_emulator/faults", json={"spec": spec})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def clean(emulator: ThreadedEmulator) -> ThreadedEmulator:
    """The module's emulator with no faults and no state, before and after the test."""
    emulator.reset()
    put_faults(emulator, "")
    yield emulator  # type: ignore[misc]
    put_faults(emulator, "")


def test_spec_grammar() -> None:
    spec = FaultSpec.parse(
        "throttle=0.3, busy=0.1,server_error=0.05,retry_after=2,task_fail=job-*:3,task_fail=x:9,"
        "starttask_fail=pool-?,preempt=p*,slow_allocation=500ms,quota.pools=1,quota.cores=4,"
        "quota.active_jobs=2,quota.low_priority_cores=8,seed=42"
    )
    assert spec.rates == {"throttle": 0.3, "busy": 0.1, "server_error": 0.05}
    assert spec.retry_after == 2
    assert spec.task_fail == [("job-*", 3), ("x", 9)]
    assert spec.slow_allocation == 0.5
    assert spec.quotas == {"pools": 1, "dedicated_cores": 4, "active_jobs": 2, "low_priority_cores": 8}
    assert spec.seed == 42
    assert FaultSpec.parse("slow_allocation=2s").slow_allocation == 2.0
    assert FaultSpec.parse(None).as_dict()["rates"] == {}


@pytest.mark.parametrize(
    "text", ["explode=1", "throttle=2", "throttle=0.6,busy=0.6", "task_fail=3", "seed", "slow_allocation=soon"]
)
def test_bad_specs_are_refused(text: str) -> None:
    with pytest.raises(FaultSpecError):
        FaultSpec.parse(text)


def test_draws_are_deterministic_with_a_seed() -> None:
    def sequence() -> list[str]:
        injector = FaultInjector(FaultSpec.parse("throttle=0.3,busy=0.2,server_error=0.1,seed=7"))
        return [type(error).__name__ if (error := injector.request_fault()) else "ok" for _ in range(40)]

    first = sequence()
    assert first == sequence()
    assert {"ok", "TooManyRequests", "ServerBusy", "InternalError"} == set(first)


def test_throttled_answer_has_retry_after_and_a_batch_body(clean: ThreadedEmulator, helpers: Any) -> None:
    put_faults(clean, "throttle=1,retry_after=3")
    client: BatchClient = helpers.make_client(clean)
    with pytest.raises(HttpResponseError) as caught:
        list(client.list_pools(retry_total=0))
    assert caught.value.status_code == 429
    assert caught.value.error.code == "TooManyRequests"
    assert caught.value.response.headers["Retry-After"] == "3"
    put_faults(clean, "busy=1")
    with pytest.raises(HttpResponseError) as busy:
        list(client.list_pools(retry_total=0))
    assert (busy.value.status_code, busy.value.error.code) == (503, "ServerBusy")
    put_faults(clean, "server_error=1")
    with pytest.raises(HttpResponseError) as failed:
        list(client.list_pools(retry_total=0))
    assert (failed.value.status_code, failed.value.error.code) == (500, "InternalError")


def test_admin_endpoints_are_never_throttled(clean: ThreadedEmulator) -> None:
    put_faults(clean, "throttle=1")
    assert httpx.get(f"{clean.url}/_emulator/health").json()["status"] == "ok"


def test_sdk_retries_a_throttled_request(clean: ThreadedEmulator, helpers: Any) -> None:
    seed = next(s for s in range(1000) if (r := random.Random(s)).random() < 0.5 <= r.random())
    put_faults(clean, f"throttle=0.5,retry_after=1,seed={seed}")
    client: BatchClient = helpers.make_client(clean)
    before = clean.service.account.stats.requests
    assert list(client.list_pools()) == []
    assert clean.service.account.stats.requests - before == 2


def test_pool_and_job_quotas(clean: ThreadedEmulator, helpers: Any) -> None:
    put_faults(clean, "quota.pools=1,quota.active_jobs=1")
    client: BatchClient = helpers.make_client(clean)
    client.create_pool(helpers.pool_options("only-pool", nodes=0))
    with pytest.raises(ResourceExistsError) as pool_error:
        client.create_pool(helpers.pool_options("second-pool", nodes=0))
    assert pool_error.value.error.code == "PoolQuotaReached"
    info = batch_models.BatchPoolInfo(pool_id="only-pool")
    client.create_job(batch_models.BatchJobCreateOptions(id="only-job", pool_info=info))
    with pytest.raises(ResourceExistsError) as job_error:
        client.create_job(batch_models.BatchJobCreateOptions(id="second-job", pool_info=info))
    assert job_error.value.error.code == "ActiveJobAndScheduleQuotaReached"


def test_core_quota_is_a_resize_error(clean: ThreadedEmulator, helpers: Any) -> None:
    put_faults(clean, "quota.cores=4")
    client: BatchClient = helpers.make_client(clean)
    client.create_pool(helpers.pool_options("capped-pool", nodes=3))
    pool = helpers.wait_until(
        lambda: (found := client.get_pool("capped-pool")).allocation_state == "steady" and found, what="steady"
    )
    assert (pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (2, 3)
    assert [error.code for error in pool.resize_errors] == ["AccountCoreQuotaReached"]


def test_task_and_start_task_failures(clean: ThreadedEmulator, helpers: Any) -> None:
    put_faults(clean, "task_fail=broken-*:17,starttask_fail=fragile")
    client: BatchClient = helpers.make_client(clean)
    start_task = batch_models.BatchStartTask(command_line="/bin/true", wait_for_success=True)
    client.create_pool(helpers.pool_options("fragile", nodes=1, start_task=start_task))
    client.create_pool(helpers.pool_options("sturdy", nodes=1))
    helpers.wait_until(
        lambda: [node.state for node in client.list_nodes("fragile")] == ["starttaskfailed"], what="start task failed"
    )
    client.create_job(
        batch_models.BatchJobCreateOptions(id="faulty", pool_info=batch_models.BatchPoolInfo(pool_id="sturdy"))
    )
    client.create_tasks(
        "faulty",
        [
            batch_models.BatchTaskCreateOptions(id="broken-1", command_line="/bin/true"),
            batch_models.BatchTaskCreateOptions(id="fine-1", command_line="/bin/true"),
        ],
    )
    helpers.wait_for_tasks(client, "faulty", 2)
    assert client.get_task("faulty", "broken-1").execution_info.exit_code == 17
    assert client.get_task("faulty", "fine-1").execution_info.exit_code == 0
    stderr = b"".join(client.download_task_file("faulty", "broken-1", "stderr.txt"))
    assert b"fault injection" in stderr


def test_faults_endpoint_round_trip_and_validation(clean: ThreadedEmulator) -> None:
    body = put_faults(clean, "throttle=0.25,seed=3")
    assert body["rates"] == {"throttle": 0.25}
    assert httpx.get(f"{clean.url}/_emulator/faults").json()["spec"] == "throttle=0.25,seed=3"
    plain = httpx.put(f"{clean.url}/_emulator/faults", content=b"busy=0.5")
    assert plain.json()["rates"] == {"busy": 0.5}
    refused = httpx.put(f"{clean.url}/_emulator/faults", json={"spec": "nonsense=1"})
    assert (refused.status_code, refused.json()["code"]) == (400, "InvalidRequestBody")


def test_stats_and_reset(clean: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(clean)
    client.create_pool(helpers.pool_options("counted", nodes=1))
    client.create_job(
        batch_models.BatchJobCreateOptions(id="counted", pool_info=batch_models.BatchPoolInfo(pool_id="counted"))
    )
    client.create_task("counted", batch_models.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    helpers.wait_for_tasks(client, "counted", 1)
    stats = httpx.get(f"{clean.url}/_emulator/stats").json()
    assert stats["tasksCompleted"] == 1
    assert stats["requestsServed"] > 3
    assert (stats["pools"], stats["jobs"], stats["tasks"]) == (1, 1, 1)
    assert httpx.post(f"{clean.url}/_emulator/reset").json() == {"status": "reset"}
    assert list(client.list_pools()) == []
    assert list(client.list_jobs()) == []


def test_slow_allocation(helpers: Any) -> None:
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.0, faults="slow_allocation=3s")) as slow:
        client: BatchClient = helpers.make_client(slow)
        client.create_pool(helpers.pool_options("slow", nodes=1))
        # Nodes appear asynchronously; once there, a slowed node is still being created.
        deadline = time.monotonic() + 2.5
        while not (nodes := list(client.list_nodes("slow"))):
            assert time.monotonic() < deadline, "no node appeared"
            time.sleep(0.02)  # polling the service, bounded by the deadline
        assert [node.state for node in nodes] == ["creating"]
        helpers.wait_for_idle_nodes(client, "slow", 1)


def test_admin_endpoints_answer_loopback_clients_only(tmp_path: Path) -> None:
    service = BatchService(EmulatorConfig(port=0), tmp_path)

    async def ask(client_address: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(service), client=(client_address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as remote:
            return await remote.get("/_emulator/health")

    try:
        assert asyncio.run(ask("127.0.0.1")).status_code == 200
        response = asyncio.run(ask("10.1.2.3"))
        assert response.status_code == 403
        assert response.json()["code"] == "InsufficientAccountPermissions"
    finally:
        service.stop()
