"""Replay Microsoft's recordings of the real Batch service against the local service and compare, per exchange.

Each recording (``recordings/*.json``) is a list of exchanges the real service answered. The harness sends
each request in order, signed with SharedKey by the unmodified azure-batch 15 pipeline, to a fresh local
service, and compares the answer with the recorded one:

- the status code;
- for errors, the error ``code`` and the keys of ``values`` (and the named property or query parameter);
- for bodies, their shape: keys present, value types, enum values (case-insensitively) and the defaults
  the real service fills in (exact values).

Ids, times, ETags, URLs, request ids and SAS tokens never take part in a comparison (only their types do). A
GET whose state differs is repeated until the recorded state is reached or a deadline passes (the recordings
poll too). Each difference is then explained by :mod:`tests.conformance.known`, or it is *unexplained*.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core import PipelineClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.policies import HeadersPolicy
from azure.core.rest import HttpRequest

from batch_emulator.app import all_routes
from batch_emulator.routing import Router
from batch_emulator.server import EmulatorConfig, ThreadedEmulator

RECORDINGS = Path(__file__).parent / "recordings"
POLL_SECONDS = 8.0
GENERATED_ID_PREFIX = "tvmps_"  # node ids the service makes up
EXTRA = ": sent only by the local service"
CONTENT_TYPE = "application/json; odata=minimalmetadata"

#: Properties whose values are enums: compared case-insensitively.
ENUM_KEYS = frozenset(
    {
        "state",
        "previousState",
        "allocationState",
        "schedulingState",
        "nodeFillType",
        "jobDefaultOrder",
        "elevationLevel",
        "scope",
        "loginMode",
        "result",
        "taskState",
        "onAllTasksComplete",
        "onTaskFailure",
        "osType",
        "verificationType",
        "protocol",
        "caching",
        "storageAccountType",
        "targetNodeCommunicationMode",
        "dynamicVNetAssignmentScope",
        "status",
        "category",
        "poolLifetimeOption",
        "provisioningState",
        "currentNodeCommunicationMode",
        "code",  # error codes inside bodies (autoScaleRun.error, resizeErrors...)
    }
)
#: Properties whose values are defaults the service fills in: compared exactly.
DEFAULT_KEYS = frozenset(
    {
        "resizeTimeout",
        "maxWallClockTime",
        "retentionTime",
        "maxTaskRetryCount",
        "taskSlotsPerNode",
        "requiredSlots",
        "enableAutoScale",
        "enableInterNodeCommunication",
        "maxParallelTasks",
        "allowTaskPreemption",
        "usesTaskDependencies",
        "waitForSuccess",
        "isDirectory",
        "isDedicated",
        "retryCount",
        "requeueCount",
        "version",
        "exactVersion",
        "enableAcceleratedNetworking",
    }
)
#: Keys whose values identify or time-stamp things: only their type is compared.
#: Error ``values`` keys whose value must match too.
NAMED_VALUES = frozenset({"PropertyName", "QueryParameterName", "HeaderName"})
_LIST_ITEM_KEYS = ("id", "name", "poolId", "taskId")
#: A difference a later poll may remove: a state or node count still moving, a value still to come, or a node
#: the service is still allocating (entities the client creates never appear by themselves).
_STATE_DIFFERENCE = re.compile(
    r"(?:^|[.\]])(state|allocationState|taskState|current\w*Nodes|exitCode|result)\b"
    r"|^value\[id=tvmps_[^\]]*\]: missing$|[^\]]: missing$"
)


@dataclass
class Exchange:
    """One recorded request and the recorded answer."""

    recording: str
    index: int
    method: str
    uri: str
    body: Any
    status: int
    response: Any
    poll: bool = False
    settled: bool = False  # the recorded answer is final: a difference is not waited out by polling
    headers: dict[str, str] = field(default_factory=dict)  # recorded request headers that change the answer

    @property
    def status_only(self) -> bool:
        """Whether the recording keeps only the status of this answer (a condensed body)."""
        return isinstance(self.response, dict) and isinstance(self.response.get("value"), str)


@dataclass
class Outcome:
    """The local service's answer to one exchange and what differs from the recording."""

    exchange: Exchange
    operation: str
    status: int
    differences: list[str] = field(default_factory=list)


def load(path: Path) -> tuple[list[Exchange], list[Exchange]]:
    """Read a recording: its setup requests (not recorded, e.g. a test fixture's pool) and its exchanges."""
    document = json.loads(path.read_text("utf-8"))
    name = path.stem

    def exchanges(key: str) -> list[Exchange]:
        return [
            Exchange(
                recording=name,
                index=index,
                method=entry["RequestMethod"],
                uri=entry["RequestUri"],
                body=entry.get("RequestBody"),
                status=int(entry.get("StatusCode", 0)),
                response=entry.get("ResponseBody"),
                poll=bool(entry.get("Poll", False)),
                settled=bool(entry.get("Settled", False)),
                headers=dict(entry.get("RequestHeaders") or {}),
            )
            for index, entry in enumerate(document.get(key) or [])
        ]

    return exchanges("Setup"), exchanges("Entries")


def recordings() -> list[Path]:
    """Every vendored recording, in name order."""
    return sorted(RECORDINGS.glob("*.json"))


_ROUTER = Router(all_routes())


def operation_of(method: str, uri: str) -> str:
    """The service operation an exchange calls, e.g. ``create_pool`` (``unknown`` when no route matches)."""
    try:
        route, _ = _ROUTER.match(method, urlsplit(uri).path)
    except Exception:  # noqa: BLE001 - an unrouted path is reported, not raised
        return f"unknown ({method} {urlsplit(uri).path})"
    name = route.handler.__name__
    return name if name != "handler" and not name.startswith("_") else f"{method} {route.template}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def compare(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Shape differences between a recorded body and ours (see the module docstring)."""
    found: list[str] = []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or 'body'}: expected an object, got {_kind(actual)}"]
        for key, value in expected.items():
            where = f"{path}.{key}" if path else key
            if key in ("odata.nextLink",):
                continue
            if key not in actual:
                found.append(f"{where}: missing")
                continue
            found.extend(_compare_value(key, value, actual[key], where))
        for key in actual:
            if key not in expected and key not in ("odata.nextLink",):
                found.append(f"{path + '.' if path else ''}{key}{EXTRA}")
        return found
    return _compare_value("", expected, actual, path or "body")


#: A recorded transient state and the states it settles in: the local service is faster (timing is compressed),
#: so a poll may already see where the real service was heading.
SETTLES_IN = {
    "resizing": {"steady"},
    "stopping": {"steady"},
    "creating": {"starting", "idle", "running", "succeeded"},  # nodes, and their extensions' provisioningState
    "starting": {"idle", "running"},
    "waitingforstarttask": {"idle", "running"},
    "active": {"preparing", "running", "completed"},
    "preparing": {"running", "completed"},
    "running": {"completed"},
    "terminating": {"completed"},
    "deleting": set(),
}


_SETTLING_KEYS = ("state", "allocationState", "provisioningState")


def _settled(recorded: Any, ours: Any) -> bool:
    """Whether an entity's state differs from the recorded one only because it has moved on since."""
    if not isinstance(recorded, dict) or not isinstance(ours, dict):
        return False
    for key in _SETTLING_KEYS:
        wanted, got = str(recorded.get(key, "")).lower(), str(ours.get(key, "")).lower()
        if wanted != got and got in SETTLES_IN.get(wanted, set()):
            return True
    return False


def _moved_on(recorded: Any, ours: Any, differences: list[str]) -> list[str]:
    """Drop the keys an entity gained by moving past the recorded state (the local service is faster)."""
    return [item for item in differences if not item.endswith(EXTRA)] if _settled(recorded, ours) else differences


def _same_enum(key: str, expected: Any, actual: Any) -> bool:
    wanted, got = str(expected).lower(), str(actual).lower()
    if wanted == got:
        return True
    settling = key in ("state", "allocationState", "taskState", "provisioningState")
    return settling and got in SETTLES_IN.get(wanted, set())


def _compare_value(key: str, expected: Any, actual: Any, where: str) -> list[str]:
    if isinstance(expected, dict):
        return compare(expected, actual, where)
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected an array, got {_kind(actual)}"]
        return _compare_list(expected, actual, where)
    if _kind(expected) != _kind(actual):
        return [f"{where}: expected {_kind(expected)} {expected!r}, got {_kind(actual)} {actual!r}"]
    if key in ENUM_KEYS and not _same_enum(key, expected, actual):
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    if key in DEFAULT_KEYS and expected != actual and not where.endswith("nodeAgentInfo.version"):
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []


def _item_key(item: Any) -> Any:
    if isinstance(item, dict):
        for name in _LIST_ITEM_KEYS:
            if name in item:
                return (name, str(item[name]).lower())
    return None


def _compare_list(expected: list[Any], actual: list[Any], where: str) -> list[str]:
    keyed = all(_item_key(item) is not None for item in expected) and bool(expected)
    if keyed:
        ours = {_item_key(item): item for item in actual}
        found: list[str] = []
        for item in expected:
            key = _item_key(item)
            if key not in ours:
                found.append(f"{where}[{key[0]}={key[1]}]: missing")
            else:
                found.extend(_moved_on(item, ours[key], compare(item, ours[key], f"{where}[{key[0]}={key[1]}]")))
        return found
    if len(expected) != len(actual):
        return [f"{where}: expected {len(expected)} items, got {len(actual)}"]
    found = []
    for index, (mine, theirs) in enumerate(zip(expected, actual, strict=True)):
        found.extend(_moved_on(mine, theirs, _compare_value("", mine, theirs, f"{where}[{index}]")))
    return found


def compare_error(expected: dict[str, Any], actual: Any) -> list[str]:
    """Differences between a recorded error body and ours: code, ``values`` keys and named properties."""
    if not isinstance(actual, dict):
        return [f"error body: expected an object, got {_kind(actual)}"]
    found = []
    if expected.get("code") != actual.get("code"):
        found.append(f"code: expected {expected.get('code')!r}, got {actual.get('code')!r}")
    theirs = {item["key"]: item.get("value") for item in expected.get("values") or []}
    ours = {item.get("key"): item.get("value") for item in actual.get("values") or [] if isinstance(item, dict)}
    if set(theirs) != set(ours):
        found.append(f"values: expected keys {sorted(theirs)}, got {sorted(str(key) for key in ours)}")
    for name in NAMED_VALUES & set(theirs):
        if str(theirs[name]).lower() != str(ours.get(name, "")).lower():
            found.append(f"values.{name}: expected {theirs[name]!r}, got {ours.get(name)!r}")
    return found


class Replayer:
    """Sends recorded requests to one local service, signed by azure-batch 15's SharedKey policy (no retries)."""

    def __init__(self, emulator: ThreadedEmulator) -> None:
        """Use ``emulator`` (already started)."""
        self.emulator = emulator
        self.ids: dict[str, str] = {}
        credential = AzureNamedKeyCredential(emulator.account_name, emulator.account_key)
        policies = [HeadersPolicy({"client-request-id": "conformance"}), BatchSharedKeyAuthPolicy(credential)]
        self.client: PipelineClient[HttpRequest, Any] = PipelineClient(emulator.url, policies=policies)

    def _local(self, text: str) -> str:
        """Replace the ids the real service generated (node ids) by the local service's."""
        for recorded, ours in self.ids.items():
            text = text.replace(recorded, ours)
        return text

    def _learn_ids(self, recorded: Any, ours: Any) -> None:
        """Pair the node ids of a recorded answer with ours (by position), for the requests that follow."""
        if isinstance(recorded, dict) and isinstance(ours, dict):
            mine, theirs = recorded.get("id"), ours.get("id")
            if isinstance(mine, str) and isinstance(theirs, str) and mine.startswith(GENERATED_ID_PREFIX):
                self.ids.setdefault(mine, theirs)
            for key, value in recorded.items():
                self._learn_ids(value, ours.get(key))
        elif isinstance(recorded, list) and isinstance(ours, list):
            by_address = {item.get("ipAddress"): item for item in ours if isinstance(item, dict)}
            for position, mine in enumerate(recorded):
                address = mine.get("ipAddress") if isinstance(mine, dict) else None
                theirs = by_address.get(address) if address else None  # nodes pair by address, else by position
                if theirs is None and position < len(ours):
                    theirs = ours[position]
                self._learn_ids(mine, theirs)

    def send(self, exchange: Exchange) -> tuple[int, Any]:
        """Send one recorded request; returns the status and the parsed body (None when empty)."""
        headers = {"Accept": "application/json", **exchange.headers}
        content = None
        if exchange.body is not None:
            headers["Content-Type"] = CONTENT_TYPE
            content = self._local(json.dumps(exchange.body)).encode("utf-8")
        elif exchange.method in ("POST", "PUT", "PATCH"):
            headers["Content-Type"] = CONTENT_TYPE
        url = self.emulator.url + self._local(exchange.uri)
        response = self.client.send_request(HttpRequest(exchange.method, url, headers=headers, content=content))
        response.read()
        text = response.text() if exchange.method != "HEAD" else ""
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = text
        return response.status_code, body

    def replay(self, exchange: Exchange) -> Outcome:
        """Send an exchange and compare; a GET is repeated until it matches or :data:`POLL_SECONDS` pass."""
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            status, body = self.send(exchange)
            outcome = Outcome(exchange, operation_of(exchange.method, exchange.uri), status)
            self._learn_ids(exchange.response, body)
            outcome.differences = self._differences(exchange, status, body)
            deleting = exchange.status == 404 and status == 200  # still being deleted
            settling = (
                exchange.method == "GET"
                and not exchange.settled
                and (
                    deleting
                    or (
                        status == exchange.status
                        and any(_STATE_DIFFERENCE.search(item) for item in outcome.differences)
                    )
                )
            )
            if not settling or time.monotonic() > deadline:
                return outcome
            time.sleep(0.1)  # polling interval while the recorded state is not reached yet

    def _differences(self, exchange: Exchange, status: int, body: Any) -> list[str]:
        if status != exchange.status:
            detail = ""
            if isinstance(body, dict) and "code" in body:
                detail = f" ({body.get('code')}: {body.get('message', {}).get('value', '').splitlines()[0]})"
            return [f"status: expected {exchange.status}, got {status}{detail}"]
        if exchange.status >= 400 and isinstance(exchange.response, dict):
            return compare_error(exchange.response, body)
        if exchange.response is None or exchange.status_only:
            return []
        recorded = json.loads(self._local(json.dumps(exchange.response)))
        return _moved_on(recorded, body, compare(recorded, body))

    def settle_setup(self, step: Exchange) -> None:
        """Wait until a pool a setup step created is ``steady``, as the test fixtures that made them waited."""
        if step.method != "POST" or urlsplit(step.uri).path != "/pools" or not isinstance(step.body, dict):
            return
        probe = Exchange(
            step.recording, -1, "GET", f"/pools/{step.body['id']}?{urlsplit(step.uri).query}", None, 200, None
        )
        deadline = time.monotonic() + POLL_SECONDS
        while time.monotonic() < deadline:
            status, body = self.send(probe)
            if status != 200 or (isinstance(body, dict) and body.get("allocationState") == "steady"):
                return
            time.sleep(0.05)  # polling interval while the fixture's pool is still allocating

    def close(self) -> None:
        """Close the client."""
        self.client.close()


def run_all(paths: list[Path] | None = None) -> Iterator[Outcome]:
    """Replay every recording against one fresh local service (reset between recordings)."""
    config = EmulatorConfig(port=0, allocation_seconds=0.3)
    with ThreadedEmulator(config) as emulator:
        replayer = Replayer(emulator)
        try:
            for path in paths or recordings():
                emulator.reset()
                replayer.ids.clear()
                setup, exchanges = load(path)
                for step in setup:
                    replayer.send(step)
                    replayer.settle_setup(step)
                for exchange in exchanges:
                    yield replayer.replay(exchange)
        finally:
            replayer.close()
