"""Errors reach azure-batch 15 as the exception types and codes the real service produces."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from batch_emulator.auth import sign, string_to_sign
from batch_emulator.server import ThreadedEmulator
from batch_emulator.timefmt import rfc1123

POOL = "errors-pool"
JOB = "errors-job"


def raw_request(emulator: ThreadedEmulator, method: str, path: str, body: Any = None) -> httpx.Response:
    """A SharedKey-signed request outside the SDK (to see status, headers and body exactly)."""
    content = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {"ocp-date": rfc1123(time.time())}
    if method not in ("GET", "HEAD"):
        headers["content-length"] = str(len(content))
    if content:
        headers["content-type"] = "application/json; odata=minimalmetadata"
    raw_path, _, raw_query = path.partition("?")
    text = string_to_sign(method, raw_path, raw_query, headers, emulator.account_name)
    headers["authorization"] = f"SharedKey {emulator.account_name}:{sign(emulator.account_key, text)}"
    return httpx.request(method, emulator.url + path, headers=headers, content=content or None)


@pytest.fixture(scope="module")
def with_job(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    client: BatchClient = helpers.make_client(emulator)
    client.create_pool(helpers.pool_options(POOL, nodes=0))
    client.create_job(batch_models.BatchJobCreateOptions(id=JOB, pool_info=batch_models.BatchPoolInfo(pool_id=POOL)))
    client.create_task(JOB, batch_models.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))
    return client


def test_duplicate_pool_is_pool_exists_case_insensitively(with_job: BatchClient, helpers: Any) -> None:
    with pytest.raises(ResourceExistsError) as caught:
        with_job.create_pool(helpers.pool_options(POOL.upper(), nodes=0))
    assert caught.value.status_code == 409
    assert caught.value.error.code == "PoolExists"


def test_duplicate_job_and_task(with_job: BatchClient) -> None:
    with pytest.raises(ResourceExistsError) as job_error:
        with_job.create_job(
            batch_models.BatchJobCreateOptions(id=JOB, pool_info=batch_models.BatchPoolInfo(pool_id=POOL))
        )
    assert job_error.value.error.code == "JobExists"
    with pytest.raises(ResourceExistsError) as task_error:
        with_job.create_task(JOB, batch_models.BatchTaskCreateOptions(id="T1", command_line="/bin/true"))
    assert task_error.value.error.code == "TaskExists"


def test_create_tasks_counts_task_exists_as_added(with_job: BatchClient) -> None:
    tasks = [batch_models.BatchTaskCreateOptions(id=name, command_line="/bin/true") for name in ("t1", "t2")]
    result = with_job.create_tasks(JOB, tasks)
    by_id = {item.task_id: item for item in result.result_values}
    assert by_id["t2"].status == "success"
    assert by_id["t1"].status == "clienterror"
    assert by_id["t1"].error.code == "TaskExists"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.get_pool("no-such-pool"), "PoolNotFound"),
        (lambda c: c.get_job("no-such-job"), "JobNotFound"),
        (lambda c: c.get_task(JOB, "no-such-task"), "TaskNotFound"),
        (lambda c: c.get_node(POOL, "tvmps_nothing_d"), "NodeNotFound"),
        (lambda c: c.pool_exists("no-such-pool"), "PoolNotFound"),
    ],
)
def test_missing_resources_are_not_found(with_job: BatchClient, call: Any, code: str) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        call(with_job)
    assert caught.value.status_code == 404
    if caught.value.error is not None:  # HEAD answers carry no body
        assert caught.value.error.code == code


def test_pool_exists_for_an_existing_pool(with_job: BatchClient) -> None:
    assert with_job.pool_exists(POOL) is True


def test_invalid_ids_and_missing_properties(with_job: BatchClient) -> None:
    with pytest.raises(HttpResponseError) as bad_id:
        with_job.create_task(JOB, batch_models.BatchTaskCreateOptions(id="bad id!", command_line="/bin/true"))
    assert bad_id.value.status_code == 400
    assert bad_id.value.error.code == "InvalidPropertyValue"
    assert {detail.code: detail.message for detail in bad_id.value.error.details}["PropertyName"] == "id"
    with pytest.raises(HttpResponseError) as long_id:
        with_job.create_task(JOB, batch_models.BatchTaskCreateOptions(id="x" * 65, command_line="/bin/true"))
    assert long_id.value.error.code == "InvalidPropertyValue"
    with pytest.raises(HttpResponseError) as missing:
        with_job.create_task(JOB, batch_models.BatchTaskCreateOptions(id="no-command"))
    assert missing.value.error.code == "MissingRequiredProperty"


def test_unknown_vm_size_and_image(with_job: BatchClient, helpers: Any) -> None:
    options = helpers.pool_options("sized", nodes=0)
    options.vm_size = "standard_nonexistent"
    with pytest.raises(HttpResponseError) as size:
        with_job.create_pool(options)
    assert size.value.error.code == "InvalidPropertyValue"
    options = helpers.pool_options("imaged", nodes=0)
    options.virtual_machine_configuration.node_agent_sku_id = "batch.node.centos 7"
    with pytest.raises(HttpResponseError) as image:
        with_job.create_pool(options)
    assert image.value.error.code == "InvalidPropertyValue"


def test_unimplemented_feature_says_so(with_job: BatchClient) -> None:
    packages = [batch_models.BatchApplicationPackageReference(application_id="app")]
    task = batch_models.BatchTaskCreateOptions(
        id="packaged", command_line="/bin/true", application_package_references=packages
    )
    with pytest.raises(HttpResponseError) as caught:
        with_job.create_task(JOB, task)
    assert caught.value.status_code == 501
    assert caught.value.error.code == "NotImplemented"


def test_wrong_key_is_authentication_failed(emulator: ThreadedEmulator, helpers: Any) -> None:
    other = helpers.make_client(emulator, key="b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDAwMDAwMDAwMDAwMDAwMA==")
    with pytest.raises(HttpResponseError) as caught:
        list(other.list_pools())
    assert caught.value.status_code == 403
    assert caught.value.error.code == "AuthenticationFailed"


def test_error_body_has_the_batch_shape(emulator: ThreadedEmulator, with_job: BatchClient) -> None:
    response = raw_request(emulator, "GET", "/pools/no-such-pool?api-version=2025-06-01")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["request-id"]
    body = response.json()
    assert body["odata.metadata"].endswith(
        "$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"
    )
    assert body["code"] == "PoolNotFound"
    assert body["message"]["lang"] == "en-US"
    first, request_id, time_line = body["message"]["value"].split("\n")
    assert first == "The specified pool does not exist."
    assert request_id == f"RequestId:{response.headers['request-id']}"
    assert time_line.startswith("Time:")


def test_missing_api_version_and_unknown_path(emulator: ThreadedEmulator) -> None:
    assert raw_request(emulator, "GET", "/pools").json()["code"] == "MissingRequiredQueryParameter"
    unknown = raw_request(emulator, "GET", "/nothing-here?api-version=2025-06-01")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "InvalidUri")


def test_invalid_json_body(emulator: ThreadedEmulator) -> None:
    response = raw_request(emulator, "POST", "/pools?api-version=2025-06-01", b"{not json")
    assert (response.status_code, response.json()["code"]) == (400, "InvalidRequestBody")


def test_task_collection_limits(emulator: ThreadedEmulator, with_job: BatchClient) -> None:
    path = f"/jobs/{JOB}/addtaskcollection?api-version=2025-06-01"
    too_many = {"value": [{"id": f"many-{i}", "commandLine": "/bin/true"} for i in range(101)]}
    response = raw_request(emulator, "POST", path, too_many)
    assert (response.status_code, response.json()["code"]) == (400, "InvalidPropertyValue")
    huge = {"value": [{"id": "huge", "commandLine": "/bin/echo " + "x" * (1024 * 1024)}]}
    response = raw_request(emulator, "POST", path, huge)
    assert (response.status_code, response.json()["code"]) == (413, "RequestBodyTooLarge")


def test_sdk_splits_a_collection_that_is_too_large(with_job: BatchClient) -> None:
    padding = "y" * 15_000  # 100 such tasks are ~1.5 MB: the service answers 413, the SDK halves the chunk
    tasks = [
        batch_models.BatchTaskCreateOptions(id=f"big-{i:03d}", command_line=f"/bin/echo {padding}") for i in range(100)
    ]
    result = with_job.create_tasks(JOB, tasks)
    assert len(result.result_values) == 100
    assert {item.status for item in result.result_values} == {"success"}


def test_single_task_over_one_megabyte(with_job: BatchClient) -> None:
    task = batch_models.BatchTaskCreateOptions(id="too-big", command_line="/bin/echo " + "z" * (1024 * 1024))
    with pytest.raises(HttpResponseError) as caught:
        with_job.create_task(JOB, task)
    assert caught.value.status_code == 413
    assert caught.value.error.code == "RequestBodyTooLarge"
