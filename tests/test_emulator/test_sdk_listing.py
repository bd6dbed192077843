"""Listing: ``$filter``, ``$select``, ``maxresults`` and absolute ``odata.nextLink`` paging through azure-batch 15."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models

from batch_emulator.auth import sign, string_to_sign
from batch_emulator.server import ThreadedEmulator
from batch_emulator.timefmt import now_ts, rfc1123

POOL = "list-pool"
JOB = "list-job"
TOTAL = 151
FAILING = {f"item-{index:03d}" for index in range(0, TOTAL, 10)}  # 16 tasks exit 3


@pytest.fixture(scope="module")
def listed(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    client: BatchClient = helpers.make_client(emulator)
    client.create_pool(helpers.pool_options(POOL, nodes=1, slots=8))
    client.create_job(batch_models.BatchJobCreateOptions(id=JOB, pool_info=batch_models.BatchPoolInfo(pool_id=POOL)))
    tasks = [
        batch_models.BatchTaskCreateOptions(
            id=f"item-{index:03d}", command_line="/bin/false" if f"item-{index:03d}" in FAILING else "/bin/true"
        )
        for index in range(TOTAL)
    ]
    client.create_tasks(JOB, tasks)
    helpers.wait_for_tasks(client, JOB, TOTAL)
    return client


def test_paging_with_maxresults(emulator: ThreadedEmulator, listed: BatchClient) -> None:
    before = emulator.service.account.stats.requests
    ids = [item.id for item in listed.list_tasks(JOB, max_results=60)]
    assert emulator.service.account.stats.requests - before == 3
    assert len(ids) == len(set(ids)) == TOTAL


def test_filter_on_result(listed: BatchClient) -> None:
    failed = {item.id for item in listed.list_tasks(JOB, filter="executionInfo/result eq 'failure'")}
    assert failed == FAILING


def test_filter_with_and_or(listed: BatchClient) -> None:
    expression = "(id eq 'item-001' or id eq 'item-010') and state eq 'completed'"
    assert {item.id for item in listed.list_tasks(JOB, filter=expression)} == {"item-001", "item-010"}
    assert not list(listed.list_tasks(JOB, filter="state eq 'active'"))
    exited = {item.id for item in listed.list_tasks(JOB, filter="executionInfo/exitCode ne 0")}
    assert exited == FAILING


def test_select_limits_properties(listed: BatchClient) -> None:
    item = next(iter(listed.list_tasks(JOB, select=["id", "state"], max_results=5)))
    assert set(item.keys()) == {"id", "state"}
    single = listed.get_task(JOB, "item-005", select=["id", "executionInfo"])
    assert set(single.keys()) - {"odata.metadata"} == {"id", "executionInfo"}


def test_invalid_filter_is_rejected(listed: BatchClient) -> None:
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as caught:
        list(listed.list_tasks(JOB, filter="state eq"))
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidQueryParameterValue"


def test_next_link_is_absolute_and_keeps_the_query(emulator: ThreadedEmulator, listed: BatchClient) -> None:
    path = f"/jobs/{JOB}/tasks"
    query = "api-version=2025-06-01&maxresults=50&%24filter=state%20eq%20%27completed%27&%24select=id,state"
    headers = {"ocp-date": rfc1123(now_ts())}
    text = string_to_sign("GET", path, query, headers, emulator.account_name)
    headers["authorization"] = f"SharedKey {emulator.account_name}:{sign(emulator.account_key, text)}"
    import httpx

    body = httpx.get(f"{emulator.url}{path}?{query}", headers=headers).json()
    link = urlsplit(body["odata.nextLink"])
    assert f"{link.scheme}://{link.netloc}" == emulator.url
    assert link.path == path
    params = parse_qs(link.query)
    assert params["api-version"] == ["2025-06-01"]
    assert params["maxresults"] == ["50"]
    assert params["$filter"] == ["state eq 'completed'"]
    assert params["$select"] == ["id,state"]
    assert params["$skiptoken"][0].isalnum()
    assert "+" not in link.query
    assert len(body["value"]) == 50


def test_list_pools_jobs_and_counts(listed: BatchClient) -> None:
    assert [pool.id for pool in listed.list_pools(filter=f"id eq '{POOL}'")] == [POOL]
    assert [job.id for job in listed.list_jobs(filter="state eq 'active'") if job.id == JOB] == [JOB]
    counts = {entry.pool_id: entry for entry in listed.list_pool_node_counts()}
    assert counts[POOL].dedicated.total == 1


def test_supported_images(listed: BatchClient) -> None:
    images = list(listed.list_supported_images())
    skus = {image.node_agent_sku_id for image in images}
    assert {"batch.node.ubuntu 22.04", "batch.node.ubuntu 24.04"} <= skus
    linux = list(listed.list_supported_images(filter="osType eq 'linux' and verificationType eq 'verified'"))
    assert linux
    assert all(image.os_type == "linux" for image in linux)
    noble = next(image for image in images if image.node_agent_sku_id == "batch.node.ubuntu 24.04")
    assert (noble.image_reference.publisher, noble.image_reference.offer, noble.image_reference.sku) == (
        "canonical",
        "ubuntu-24_04-lts",
        "server",
    )


def test_an_endpoint_with_the_account_as_its_path(emulator: ThreadedEmulator, listed: BatchClient) -> None:
    from azure.core.credentials import AzureNamedKeyCredential

    url = f"{emulator.url}/{emulator.account_name}"
    with BatchClient(url, AzureNamedKeyCredential(emulator.account_name, emulator.account_key)) as prefixed:
        ids = [item.id for item in prefixed.list_tasks(JOB, max_results=100)]
        assert len(ids) == TOTAL
        assert prefixed.get_job(JOB).url == f"{url}/jobs/{JOB}"
