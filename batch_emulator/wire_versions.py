"""Every REST api-version the service answers, and what differs on the wire between them (one place).

The service keeps one model and renders the newest shape (``2025-06-01``); requests with an older
``api-version`` are read with that version's property names and answered with its shapes by :func:`adapt`
(called by the response helpers) and :func:`read_request` (called when a body is parsed). An
``api-version`` the service never had gets the service's ``400 InvalidQueryParameterValue``.

Which client sends which version:

==================================  ===================
client                              api-version
==================================  ===================
azure-batch 11.0                    2021-06-01.14.0
azure-batch 12.0                    2022-01-01.15.0
azure-batch 13.0                    2022-10-01.16.0
azure-batch 14.0                    2023-05-01.17.0
azure-batch 14.1                    2023-11-01.18.0
azure-batch 14.2, 15.0b1, CLI 2.91  2024-02-01.19.0
azure-batch 15.0b2                  2024-07-01.20.0
azure-batch 15.x                    2025-06-01
==================================  ===================
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from batch_emulator.errors import InvalidQueryParameterValue

#: Every data-plane api-version the Batch service has had, oldest first.
API_VERSIONS: tuple[str, ...] = (
    "2015-12-01.2.2",
    "2016-02-01.3.0",
    "2016-07-01.3.1",
    "2017-01-01.4.0",
    "2017-05-01.5.0",
    "2017-06-01.5.1",
    "2017-09-01.6.0",
    "2018-03-01.6.1",
    "2018-08-01.7.0",
    "2018-12-01.8.0",
    "2019-06-01.9.0",
    "2019-08-01.10.0",
    "2020-03-01.11.0",
    "2020-09-01.12.0",
    "2021-01-01.13.0",
    "2021-06-01.14.0",
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
)
LATEST = API_VERSIONS[-1]
_ORDER = {version: index for index, version in enumerate(API_VERSIONS)}

# The first version of each difference below.
HTTP_URL_RESOURCE_FILES = "2018-12-01.8.0"  # resourceFiles[].httpUrl replaced blobSource
TASK_SLOTS = "2021-01-01.13.0"  # taskSlotsPerNode/requiredSlots/taskSlotCounts replaced maxTasksPerNode
DEALLOCATED_NODE_COUNTS = "2024-07-01.20.0"  # nodecounts gained deallocated/deallocating
JOB_DEFAULT_ORDER = "2025-06-01"  # taskSchedulingPolicy.jobDefaultOrder
# Pools and nodes show an empty certificateReferences from some version between 2020-03-01.11.0 (the CLI's
# recording shows none) and 2024-07-01.20.0 (the SDK's shows []) until certificates left the API in 2025-06-01.
CERTIFICATES_SHOWN = "2023-05-01.17.0"
NODE_COMMUNICATION_MODE = "2022-10-01.16.0"  # pools' target/currentNodeCommunicationMode
CERTIFICATES_REMOVED = "2025-06-01"


def check_api_version(value: str) -> str:
    """Return the api-version of a request when the service has it.

    Raises:
        InvalidQueryParameterValue: a version the service never had (the service's answer, 400).
    """
    if value not in _ORDER:
        raise InvalidQueryParameterValue(
            "api-version", value, f"The api-version is not supported; the newest is {LATEST}."
        )
    return value


def before(version: str, first: str) -> bool:
    """Whether ``version`` is older than ``first`` (the version that introduced a difference)."""
    return _ORDER.get(version, len(API_VERSIONS)) < _ORDER[first]


def _each_resource_file(body: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    for holder in (body, body.get("startTask")):
        if isinstance(holder, dict):
            for item in holder.get("resourceFiles") or ():
                if isinstance(item, dict):
                    change(item)


def read_request(body: Any) -> Any:
    """Read a request body written for any api-version as the newest version names things.

    ``resourceFiles[].blobSource`` (before 2018-12-01.8.0) is ``httpUrl``; ``maxTasksPerNode`` (before
    2021-01-01.13.0) is ``taskSlotsPerNode``. Task collections are read task by task.
    """
    if not isinstance(body, dict):
        return body

    def rename(item: dict[str, Any]) -> None:
        if "blobSource" in item and "httpUrl" not in item:
            item["httpUrl"] = item.pop("blobSource")

    for entity in body["value"] if isinstance(body.get("value"), list) else [body]:
        if isinstance(entity, dict):
            _each_resource_file(entity, rename)
            if "maxTasksPerNode" in entity and "taskSlotsPerNode" not in entity:
                entity["taskSlotsPerNode"] = entity.pop("maxTasksPerNode")
    return body


def _shows_certificates(version: str) -> bool:
    return not before(version, CERTIFICATES_SHOWN) and before(version, CERTIFICATES_REMOVED)


def _pool(body: dict[str, Any], version: str) -> None:
    policy = body.get("taskSchedulingPolicy")
    if isinstance(policy, dict) and before(version, JOB_DEFAULT_ORDER):
        policy.pop("jobDefaultOrder", None)
    if _shows_certificates(version):
        body.setdefault("certificateReferences", [])
    if before(version, NODE_COMMUNICATION_MODE):
        body.pop("currentNodeCommunicationMode", None)
    if before(version, TASK_SLOTS) and "taskSlotsPerNode" in body:
        body["maxTasksPerNode"] = body.pop("taskSlotsPerNode")


def _node(body: dict[str, Any], version: str) -> None:
    if _shows_certificates(version) and body.get("state") not in ("creating", "starting"):
        body.setdefault("certificateReferences", [])
    if before(version, TASK_SLOTS):
        body.pop("runningTaskSlotsCount", None)


def _task(body: dict[str, Any], version: str) -> None:
    if before(version, TASK_SLOTS):
        body.pop("requiredSlots", None)


def _task_counts(body: dict[str, Any], version: str) -> None:
    if before(version, TASK_SLOTS) and isinstance(body.get("taskCounts"), dict):
        counts = body.pop("taskCounts")
        body.pop("taskSlotCounts", None)
        body.update(counts)


def _node_counts(body: dict[str, Any], version: str) -> None:
    if before(version, DEALLOCATED_NODE_COUNTS):
        for kind in ("dedicated", "lowPriority"):
            counts = body.get(kind)
            if isinstance(counts, dict):
                counts.pop("deallocated", None)
                counts.pop("deallocating", None)


_ADAPTERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "pools": _pool,
    "nodes": _node,
    "tasks": _task,
    "taskcountsresult": _task_counts,
    "poolnodecounts": _node_counts,
}


def adapt(entity_set: str, body: dict[str, Any], version: str) -> dict[str, Any]:
    """Render an entity of ``entity_set`` in the shape of ``version`` (a copy when it differs).

    Args:
        entity_set: The OData entity set (``pools``, ``nodes``, ``jobs``, ``tasks``, ...).
        body: The newest-version wire JSON of one entity.
        version: The request's api-version (already checked).
    """
    if version == LATEST:
        return body
    body = copy.deepcopy(body)  # the newest shape may share nested objects with the model's state
    adapter = _ADAPTERS.get(entity_set)
    if adapter is not None:
        adapter(body, version)
    if before(version, HTTP_URL_RESOURCE_FILES):

        def back(item: dict[str, Any]) -> None:
            if "httpUrl" in item:
                item["blobSource"] = item.pop("httpUrl")

        _each_resource_file(body, back)
    return body
