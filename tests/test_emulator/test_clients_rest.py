"""Plain REST as other clients send it: Azure CLI values, older api-versions, the whole catalogue, service errors.

Requests are signed by azure-batch 15's SharedKey policy and sent as the named client sends them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core import PipelineClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from batch_emulator.server import EmulatorConfig, ThreadedEmulator

pytestmark = pytest.mark.integration
NEW = "2025-06-01"
UBUNTU = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}


class Rest:
    """A signed REST client for one local service."""

    def __init__(self, emulator: ThreadedEmulator) -> None:
        self.url = emulator.url
        credential = AzureNamedKeyCredential(emulator.account_name, emulator.account_key)
        self.client: PipelineClient[HttpRequest, Any] = PipelineClient(
            emulator.url, policies=[BatchSharedKeyAuthPolicy(credential)]
        )

    def __call__(self, method: str, path: str, body: Any = None, version: str = NEW) -> tuple[int, Any]:
        separator = "&" if "?" in path else "?"
        headers = {"Content-Type": "application/json; odata=minimalmetadata"} if method in ("POST", "PUT") else {}
        content = json.dumps(body).encode() if body is not None else None
        request = HttpRequest(
            method, f"{self.url}{path}{separator}api-version={version}", headers=headers, content=content
        )
        response = self.client.send_request(request)
        response.read()
        text = response.text()
        return response.status_code, json.loads(text) if text.strip() else None


@pytest.fixture(scope="module")
def rest() -> Iterator[Rest]:
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as emulator:
        client = Rest(emulator)
        yield client
        client.client.close()


def pool(pool_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {"imageReference": UBUNTU, "nodeAgentSKUId": "batch.node.ubuntu 22.04"},
        **extra,
    }


def error_of(body: Any) -> tuple[str, dict[str, str]]:
    return body["code"], {item["key"]: item["value"] for item in body.get("values", [])}


def test_azure_cli_numbers_as_strings_and_enum_casing(rest: Rest) -> None:
    body = pool(
        "cli-pool",
        targetDedicatedNodes="1",
        taskSlotsPerNode="2",
        taskSchedulingPolicy={"nodeFillType": "PACK"},
        startTask={
            "commandLine": "/bin/true",
            "maxTaskRetryCount": "1",
            "waitForSuccess": "True",
            "userIdentity": {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}},
        },
    )
    assert rest("POST", "/pools", body)[0] == 201
    status, shown = rest("GET", "/pools/cli-pool")
    assert status == 200
    assert (shown["targetDedicatedNodes"], shown["taskSlotsPerNode"]) == (1, 2)
    assert shown["taskSchedulingPolicy"] == {"nodeFillType": "Pack", "jobDefaultOrder": "none"}
    assert shown["startTask"]["maxTaskRetryCount"] == 1
    assert shown["startTask"]["waitForSuccess"] is True
    assert shown["startTask"]["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    assert rest("POST", "/pools/cli-pool/resize", {"targetDedicatedNodes": "2"})[0] == 202
    assert rest("GET", "/pools/cli-pool")[1]["targetDedicatedNodes"] == 2
    assert rest("POST", "/jobs", {"id": "cli-job", "priority": "5", "poolInfo": {"poolId": "cli-pool"}})[0] == 201
    task = {
        "id": "t1",
        "commandLine": "/bin/true",
        "constraints": {"maxTaskRetryCount": "1", "maxWallClockTime": "pt1h"},
    }
    assert rest("POST", "/jobs/cli-job/tasks", task)[0] == 201
    shown_task = rest("GET", "/jobs/cli-job/tasks/t1")[1]
    assert shown_task["constraints"]["maxTaskRetryCount"] == 1
    assert shown_task["constraints"]["maxWallClockTime"] == "PT1H"
    assert rest("GET", "/jobs/cli-job")[1]["priority"] == 5
    status, refused = rest("POST", "/pools/cli-pool/resize", {"targetDedicatedNodes": "two"})
    assert (status, error_of(refused)[1]["PropertyName"]) == (400, "targetDedicatedNodes")


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        ("STANDARD_DS1_V2", "standard_ds1_v2"),
        ("standard_d2_v2", "standard_d2_v2"),
        ("Standard_NC6s_v3", "standard_nc6s_v3"),
    ],
)
def test_vm_sizes_match_case_insensitively(rest: Rest, size: str, shown: str) -> None:
    pool_id = f"size-{shown.replace('_', '-')}"
    assert rest("POST", "/pools", pool(pool_id, vmSize=size))[0] == 201
    assert rest("GET", f"/pools/{pool_id}")[1]["vmSize"] == shown


def test_unknown_size_and_image_get_the_service_errors(rest: Rest) -> None:
    status, body = rest("POST", "/pools", pool("bad-size", vmSize="standard_nope_v9"))
    assert (status, error_of(body)[0], error_of(body)[1]["PropertyName"]) == (400, "InvalidPropertyValue", "vmSize")
    image = {
        "imageReference": {"publisher": "acme", "offer": "os", "sku": "1"},
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    }
    status, body = rest("POST", "/pools", pool("bad-image", virtualMachineConfiguration=image))
    assert (status, error_of(body)[1]["PropertyName"]) == (400, "imageReference")
    assert set(error_of(body)[1]) == {"PropertyName", "Reason"}  # as the service answers: no PropertyValue
    assert error_of(body)[1]["Reason"].startswith("The specified imageReference with publisher acme offer os sku 1 ")
    managed = {
        "imageReference": {
            "virtualMachineImageId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i"
        },
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    }
    status, body = rest("POST", "/pools", pool("managed-image", virtualMachineConfiguration=managed))
    assert (status, error_of(body)[1]["PropertyName"]) == (400, "virtualMachineImageId")  # only gallery images
    wrong_agent = {"imageReference": UBUNTU, "nodeAgentSKUId": "batch.node.windows amd64"}
    status, body = rest("POST", "/pools", pool("bad-agent", virtualMachineConfiguration=wrong_agent))
    assert (status, error_of(body)[1]["PropertyName"]) == (400, "nodeAgentSKUId")


@pytest.mark.parametrize(
    ("publisher", "offer", "sku", "agent"),
    [
        ("MicrosoftWindowsServer", "WindowsServer", "2016-Datacenter-smalldisk", "batch.node.windows amd64"),
        ("MicrosoftWindowsServer", "WindowsServer", "2025-datacenter-smalldisk-g2", "batch.node.windows amd64"),
        ("Canonical", "0001-com-ubuntu-server-focal", "20_04-lts", "batch.node.ubuntu 20.04"),
        ("almalinux", "almalinux-x86_64", "9-gen2", "batch.node.el 9"),
        ("microsoft-azure-batch", "ubuntu-server-container", "20-04-lts", "batch.node.ubuntu 20.04"),
    ],
)
def test_images_the_service_lists_or_listed_are_accepted(
    rest: Rest, publisher: str, offer: str, sku: str, agent: str
) -> None:
    config = {"imageReference": {"publisher": publisher, "offer": offer, "sku": sku}, "nodeAgentSKUId": agent}
    pool_id = re.sub(r"[^A-Za-z0-9_-]", "-", f"img-{offer}-{sku}")[:64]
    assert rest("POST", "/pools", pool(pool_id, virtualMachineConfiguration=config))[0] == 201


def test_retired_image_is_accepted_with_a_warning_and_not_listed(rest: Rest, caplog: pytest.LogCaptureFixture) -> None:
    config = {
        "imageReference": {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "18.04-LTS"},
        "nodeAgentSKUId": "batch.node.ubuntu 18.04",
    }
    with caplog.at_level(logging.WARNING, logger="batch_emulator"):
        assert rest("POST", "/pools", pool("retired", virtualMachineConfiguration=config))[0] == 201
    assert "past its Batch end of life" in caplog.text
    listed = rest("GET", "/supportedimages")[1]["value"]
    assert all(item["nodeAgentSKUId"] != "batch.node.ubuntu 18.04" for item in listed)
    assert {"batch.node.ubuntu 24.04", "batch.node.windows amd64", "batch.node.el 9"} <= {
        item["nodeAgentSKUId"] for item in listed
    }
    assert all({"batchSupportEndOfLife", "verificationType"} <= set(item) for item in listed)


def test_retired_size_is_accepted_with_a_warning(rest: Rest, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="batch_emulator"):
        assert rest("POST", "/pools", pool("a-v1", vmSize="Standard_A1"))[0] == 201
    assert "Standard_A1 was retired by Azure on 2024-08-31" in caplog.text
    assert rest("GET", "/pools/a-v1")[1]["vmSize"] == "standard_a1"


def test_api_versions_of_older_clients_get_their_shapes(rest: Rest) -> None:
    old = "2020-09-01.12.0"
    body = pool("old-pool", maxTasksPerNode=2, targetDedicatedNodes=1)
    assert rest("POST", "/pools", body, version=old)[0] == 201
    shown = rest("GET", "/pools/old-pool", version=old)[1]
    assert (shown["maxTasksPerNode"], "taskSlotsPerNode" in shown) == (2, False)
    assert "jobDefaultOrder" not in shown["taskSchedulingPolicy"]
    assert rest("GET", "/pools/old-pool", version="2024-07-01.20.0")[1]["certificateReferences"] == []
    assert rest("GET", "/pools/old-pool")[1]["taskSchedulingPolicy"]["jobDefaultOrder"] == "none"
    assert rest("POST", "/jobs", {"id": "old-job", "poolInfo": {"poolId": "old-pool"}}, version=old)[0] == 201
    task = {
        "id": "blob",
        "commandLine": "/bin/true",
        "resourceFiles": [{"blobSource": "http://127.0.0.1:9/x", "filePath": "x"}],
    }
    assert rest("POST", "/jobs/old-job/tasks", task, version="2018-08-01.7.0")[0] == 201
    assert rest("GET", "/jobs/old-job/tasks/blob", version="2018-08-01.7.0")[1]["resourceFiles"][0]["blobSource"]
    assert rest("GET", "/jobs/old-job/tasks/blob")[1]["resourceFiles"][0]["httpUrl"] == "http://127.0.0.1:9/x"
    counts = rest("GET", "/jobs/old-job/taskcounts", version=old)[1]
    assert "taskCounts" not in counts
    assert {"active", "running", "completed"} <= set(counts)
    skus = rest("GET", "/nodeagentskus", version="2019-08-01.10.0")[1]["value"]
    assert any(sku["id"] == "batch.node.ubuntu 22.04" and sku["verifiedImageReferences"] for sku in skus)


def test_an_api_version_the_service_never_had_is_refused(rest: Rest) -> None:
    status, body = rest("GET", "/pools", version="2099-01-01")
    code, values = error_of(body)
    assert (status, code, values["QueryParameterName"]) == (400, "InvalidQueryParameterValue", "api-version")


def test_files_of_a_task_that_never_ran_are_not_valid_for_its_state(rest: Rest) -> None:
    assert rest("POST", "/jobs", {"id": "nopool-job", "poolInfo": {"poolId": "no-such-pool"}})[0] == 201
    assert rest("POST", "/jobs/nopool-job/tasks", {"id": "waiting", "commandLine": "/bin/true"})[0] == 201
    status, body = rest("GET", "/jobs/nopool-job/tasks/waiting/files")
    assert (status, body["code"]) == (409, "OperationInvalidForCurrentState")


def test_nodes_show_their_endpoints(rest: Rest, helpers: Any) -> None:
    assert rest("POST", "/pools", pool("ep-pool", targetDedicatedNodes=2))[0] == 201
    nodes = helpers.wait_until(
        lambda: (
            len(rest("GET", "/pools/ep-pool/nodes")[1]["value"]) == 2
            and rest("GET", "/pools/ep-pool/nodes")[1]["value"]
        ),
        what="2 nodes",
    )
    endpoints = sorted(node["endpointConfiguration"]["inboundEndpoints"][0]["frontendPort"] for node in nodes)
    assert endpoints == [50000, 50001]
    assert {node["endpointConfiguration"]["inboundEndpoints"][0]["backendPort"] for node in nodes} == {22}
    steady = helpers.wait_until(
        lambda: (shown := rest("GET", "/pools/ep-pool")[1])["allocationState"] == "steady" and shown, what="steady"
    )
    assert steady["currentNodeCommunicationMode"] == "classic"  # shown once nodes are allocated, as Azure shows it
    assert "currentNodeCommunicationMode" not in rest("GET", "/pools/ep-pool", version="2022-01-01.15.0")[1]


def test_certificates_are_retired_as_in_azure(rest: Rest) -> None:
    certificate = {"thumbprint": "cff2ab63", "thumbprintAlgorithm": "sha1", "data": "MIIG", "certificateFormat": "pfx"}
    one = "/certificates(thumbprintAlgorithm=sha1,thumbprint=cff2ab63)"
    for method, path, body in (
        ("POST", "/certificates", certificate),
        ("GET", "/certificates", None),
        ("GET", one, None),
        ("DELETE", one, None),
        ("POST", one + "/canceldelete", None),
    ):
        status, answer = rest(method, path, body)
        code, values = error_of(answer)
        assert (status, code) == (400, "CertificateRetired"), (method, path)
        assert "remove the certificate references" in values["Reason"]
    reference = {"thumbprint": "cff2ab63", "thumbprintAlgorithm": "sha1"}
    status, answer = rest("POST", "/pools", pool("cert-pool", certificateReferences=[reference]))
    assert (status, answer["code"]) == (400, "CertificateRetired")


def test_terminating_a_running_task_keeps_its_start_time(rest: Rest, helpers: Any) -> None:
    assert rest("POST", "/pools", pool("term-pool", targetDedicatedNodes=1))[0] == 201
    assert rest("POST", "/jobs", {"id": "term-job", "poolInfo": {"poolId": "term-pool"}})[0] == 201
    assert rest("POST", "/jobs/term-job/tasks", {"id": "long", "commandLine": "/bin/sleep 30"})[0] == 201
    running = helpers.wait_until(
        lambda: (task := rest("GET", "/jobs/term-job/tasks/long")[1])["state"] == "running" and task, what="running"
    )
    assert rest("POST", "/jobs/term-job/tasks/long/terminate")[0] == 204
    ended = helpers.wait_until(
        lambda: (task := rest("GET", "/jobs/term-job/tasks/long")[1])["state"] == "completed" and task, what="ended"
    )
    assert ended["executionInfo"]["startTime"] == running["executionInfo"]["startTime"]
    assert ended["executionInfo"]["result"] == "failure"
