"""The local management plane answers in the shapes Microsoft recorded from the real service (recordings/)."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batch_emulator.server import ThreadedEmulator
from batchpipe.local_identity import LocalDevelopmentCredential, LocalTls

RECORDINGS = Path(__file__).parent / "recordings"
ACCOUNT_PATH = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Batch/batchAccounts/localbatch"
API = "?api-version=2023-11-01"  # the version of the recordings; the SDK's newer default works as well
#: Enum-valued properties whose values must match the recording exactly.
ENUMS = ("provisioningState", "allocationState", "interNodeCommunication", "nodeFillType", "nodeDeallocationOption")


def recorded(name: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((RECORDINGS / name).read_text("utf-8"))["entries"]
    return entries


def enum_values() -> dict[str, set[Any]]:
    """Every value the recordings show for each enum-valued property."""
    seen: dict[str, set[Any]] = {name: set() for name in ENUMS}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in seen:
                    seen[key].add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for name in ("pools.json", "account.json"):
        walk([entry.get("ResponseBody") for entry in recorded(name)])
    return seen


def mismatches(real: Any, ours: Any, path: str = "") -> list[str]:
    """Where ``ours`` lacks a key of ``real``, has another JSON type, or an enum value the service never sent."""
    if type(real) is not type(ours):
        return [f"{path}: {type(real).__name__} recorded, {type(ours).__name__} here"]
    problems: list[str] = []
    if isinstance(real, dict):
        for key, value in real.items():
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += mismatches(value, ours[key], f"{path}.{key}")
    elif isinstance(real, list) and real and ours:
        problems += mismatches(real[0], ours[0], f"{path}[0]")
    name = path.rsplit(".", 1)[-1]
    if name in ENUMS and ours not in enum_values()[name]:
        problems.append(f"{path}: {ours!r} is not among the recorded values {sorted(enum_values()[name])}")
    return problems


class Arm:
    """Raw ARM requests to the local service (the SDK would hide the wire shapes)."""

    def __init__(self, emulator: ThreadedEmulator, tls: LocalTls) -> None:
        token = LocalDevelopmentCredential().get_token("https://management.azure.com/.default").token
        self.client = httpx.Client(
            base_url=emulator.url,
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(tls.ca_file)),
        )
        self.account = ACCOUNT_PATH.format(sub="00000000-0000-0000-0000-000000000000", rg="rgpy-f4b22485")

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.client.request(method, path + API, json=body)


@pytest.fixture
def arm(arm_emulator: ThreadedEmulator, local_tls: LocalTls) -> Iterator[Arm]:
    client = Arm(arm_emulator, local_tls)
    yield client
    client.client.close()


def local_pool_request(recorded_body: dict[str, Any]) -> dict[str, Any]:
    """The recorded PUT body with a VM size and image the local catalogue offers (Windows is not offered)."""
    body = json.loads(json.dumps(recorded_body))
    body["properties"]["vmSize"] = "Standard_A1_v2"
    config = body["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]
    config["imageReference"] = {
        "publisher": "canonical",
        "offer": "0001-com-ubuntu-server-jammy",
        "sku": "22_04-lts",
        "version": "latest",
    }
    config["nodeAgentSkuId"] = "batch.node.ubuntu 22.04"
    return body


def test_pool_put_list_and_get_answer_the_recorded_shape(arm: Arm) -> None:
    put, _patch, _get, *_ = recorded("pools.json")
    path = f"{arm.account}/pools/test_iaas_pool"

    created = arm.request("PUT", path, local_pool_request(put["RequestBody"]))
    listed = arm.request("GET", f"{arm.account}/pools")
    got = arm.request("GET", path)

    assert created.status_code == put["StatusCode"]
    assert created.headers["content-type"] == put["ResponseHeaders"]["Content-Type"]
    assert created.headers["etag"] == created.json()["etag"]
    assert mismatches(put["ResponseBody"], created.json()) == []
    assert mismatches(put["ResponseBody"], listed.json()["value"][0]) == []
    assert mismatches(put["ResponseBody"], got.json()) == []
    assert created.json()["id"] == path


def test_a_patch_to_autoscale_answers_the_recorded_shape(arm: Arm) -> None:
    put, patch, get, *_ = recorded("pools.json")
    path = f"{arm.account}/pools/test_iaas_pool"
    arm.request("PUT", path, local_pool_request(put["RequestBody"]))
    deadline = time.monotonic() + 15
    while arm.request("GET", path).json()["properties"]["allocationState"] != "Steady":
        assert time.monotonic() < deadline, "the pool never became steady"
        time.sleep(0.02)  # polling interval of a condition with a deadline

    patched = arm.request("PATCH", path, patch["RequestBody"])
    got = arm.request("GET", path)

    assert patched.status_code == patch["StatusCode"]
    assert mismatches(patch["ResponseBody"], patched.json()) == []
    assert mismatches(get["ResponseBody"], got.json()) == []
    assert got.json()["properties"]["scaleSettings"] == get["ResponseBody"]["properties"]["scaleSettings"]


def test_pool_delete_answers_202_with_a_location_polled_until_200(arm: Arm) -> None:
    *_, delete, poll_busy, poll_done = recorded("pools.json")
    path = f"{arm.account}/pools/test_iaas_pool"
    arm.request("PUT", path, local_pool_request(recorded("pools.json")[0]["RequestBody"]))

    deleted = arm.request("DELETE", path)

    assert deleted.status_code == delete["StatusCode"] == poll_busy["StatusCode"]
    location = deleted.headers["location"]
    recorded_location = delete["ResponseHeaders"]["Location"].split("/batchAccounts/batch11f4b22485", 1)[1]
    assert location.split("?")[0] == f"{arm.client.base_url}{arm.account}{recorded_location.split('?')[0]}"
    assert "api-version=" in location
    assert int(deleted.headers["retry-after"]) >= 1
    statuses = [arm.client.get(location).status_code]
    deadline = time.monotonic() + 15
    while statuses[-1] == 202 and time.monotonic() < deadline:
        time.sleep(0.02)  # polling interval of a condition with a deadline
        statuses.append(arm.client.get(location).status_code)
    assert set(statuses[:-1]) <= {202}
    assert statuses[-1] == poll_done["StatusCode"]
    assert arm.request("GET", path).status_code == 404


def test_the_account_answers_the_recorded_shape(arm: Arm) -> None:
    [get] = recorded("account.json")

    ours = arm.request("GET", arm.account).json()

    problems = mismatches(get["ResponseBody"], ours)
    # The recorded account has a system-assigned identity; the local one has none (no principal to name).
    assert problems == [".identity.principalId: missing", ".identity.tenantId: missing"]
    assert ours["properties"]["dedicatedCoreQuotaPerVMFamily"][0].keys() == {"name", "coreQuota"}


def test_location_quotas_and_name_checks_answer_the_recorded_shapes(arm: Arm) -> None:
    quotas, invalid, available = recorded("locations.json")
    location = "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Batch/locations/eastus"

    ours_quotas = arm.request("GET", f"{location}/quotas").json()
    ours_invalid = arm.request("POST", f"{location}/checkNameAvailability", {"name": "ab"}).json()
    ours_available = arm.request("POST", f"{location}/checkNameAvailability", available["RequestBody"]).json()

    assert mismatches(quotas["ResponseBody"], ours_quotas) == []
    assert ours_invalid == invalid["ResponseBody"]
    assert ours_available == available["ResponseBody"]
