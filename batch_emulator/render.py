"""Wire JSON of pools, nodes, jobs and tasks (the models know nothing of URLs and field names)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from batch_emulator.models.jobs import Job
from batch_emulator.models.nodes import Node
from batch_emulator.models.pools import Pool
from batch_emulator.models.tasks import Task
from batch_emulator.timefmt import UNLIMITED_DURATION, etag_for, iso

NODE_AGENT_VERSION = "1.0.0-localbatch"
DEFAULT_RESIZE_TIMEOUT = "PT15M"
DEFAULT_RETENTION = "P7D"


def seg(value: str) -> str:
    """Percent-encode one path segment."""
    return quote(value, safe="")


def metadata(base: str, entity_set: str, element: bool) -> str:
    """The ``odata.metadata`` value of a single entity or a list."""
    return f"{base}/$metadata#{entity_set}" + ("/@Element" if element else "")


def without_passwords(value: Any) -> Any:
    """A copy of wire JSON without ``password`` properties (registry credentials are never returned).

    Args:
        value: A JSON value.

    Returns:
        The value, with every object's ``password`` left out (objects are copied, not changed).
    """
    if isinstance(value, dict):
        return {key: without_passwords(item) for key, item in value.items() if key != "password"}
    if isinstance(value, list):
        return [without_passwords(item) for item in value]
    return value


def pool_wire(pool: Pool, base: str) -> dict[str, Any]:
    """Render a pool."""
    body: dict[str, Any] = {"id": pool.id}
    body.update(pool.spec)
    for name in ("virtualMachineConfiguration", "startTask"):
        if name in body:
            body[name] = without_passwords(body[name])
    body.update(
        {
            "url": f"{base}/pools/{seg(pool.id)}",
            "eTag": etag_for(pool.last_modified),
            "lastModified": iso(pool.last_modified),
            "creationTime": iso(pool.creation_time),
            "state": pool.state,
            "stateTransitionTime": iso(pool.state_time),
            "allocationState": pool.allocation_state,
            "allocationStateTransitionTime": iso(pool.allocation_time),
            "resizeTimeout": pool.spec.get("resizeTimeout", DEFAULT_RESIZE_TIMEOUT),
            "currentDedicatedNodes": pool.current_nodes(True),
            "currentLowPriorityNodes": pool.current_nodes(False),
            "targetDedicatedNodes": pool.target_dedicated,
            "targetLowPriorityNodes": pool.target_low_priority,
            "enableAutoScale": False,
            "enableInterNodeCommunication": bool(pool.spec.get("enableInterNodeCommunication", False)),
            "taskSlotsPerNode": pool.slots_per_node,
            "taskSchedulingPolicy": {"nodeFillType": pool.fill_type},
        }
    )
    if pool.resize_errors:
        body["resizeErrors"] = pool.resize_errors
    return body


def node_wire(node: Node, base: str) -> dict[str, Any]:
    """Render a compute node."""
    pool = node.pool
    url = f"{base}/pools/{seg(pool.id)}/nodes/{seg(node.id)}"
    body: dict[str, Any] = {
        "id": node.id,
        "url": url,
        "state": node.state,
        "schedulingState": "enabled",
        "stateTransitionTime": iso(node.state_time),
        "allocationTime": iso(node.allocation_time),
        "ipAddress": node.ip_address,
        "affinityId": f"TVM:{node.id}",
        "vmSize": pool.spec["vmSize"],
        "totalTasksRun": node.total_tasks_run,
        "runningTasksCount": len(node.tasks),
        "runningTaskSlotsCount": node.slots_used,
        "totalTasksSucceeded": node.total_tasks_succeeded,
        "isDedicated": node.is_dedicated,
        "nodeAgentInfo": {"version": NODE_AGENT_VERSION, "lastUpdateTime": iso(node.allocation_time)},
        "virtualMachineInfo": {"imageReference": pool.spec["virtualMachineConfiguration"]["imageReference"]},
    }
    if node.last_boot_time is not None:
        body["lastBootTime"] = iso(node.last_boot_time)
    if node.tasks:
        body["recentTasks"] = [
            {
                "taskUrl": f"{base}/jobs/{seg(task.job.id)}/tasks/{seg(task.id)}",
                "jobId": task.job.id,
                "taskId": task.id,
                "taskState": task.state,
                "executionInfo": execution_info(task),
            }
            for task in sorted(node.tasks, key=lambda item: item.state_time)[:10]
        ]
    if pool.start_task is not None:
        body["startTask"] = without_passwords(pool.start_task)
    if node.start_task_info is not None:
        body["startTaskInfo"] = node.start_task_info
    if node.errors:
        body["errors"] = node.errors
    return body


def job_wire(job: Job, base: str) -> dict[str, Any]:
    """Render a job."""
    body: dict[str, Any] = {"id": job.id}
    body.update(job.spec)
    constraints = dict(job.spec.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNLIMITED_DURATION)
    constraints.setdefault("maxTaskRetryCount", 0)
    execution: dict[str, Any] = {"startTime": iso(job.creation_time), "poolId": job.pool_id}
    if job.end_time is not None:
        execution["endTime"] = iso(job.end_time)
    if job.terminate_reason is not None:
        execution["terminateReason"] = job.terminate_reason
    body.update(
        {
            "url": f"{base}/jobs/{seg(job.id)}",
            "eTag": etag_for(job.last_modified),
            "lastModified": iso(job.last_modified),
            "creationTime": iso(job.creation_time),
            "state": job.state,
            "stateTransitionTime": iso(job.state_time),
            "priority": job.priority,
            "maxParallelTasks": job.max_parallel_tasks,
            "allowTaskPreemption": bool(job.spec.get("allowTaskPreemption", False)),
            "usesTaskDependencies": bool(job.spec.get("usesTaskDependencies", False)),
            "constraints": constraints,
            "onAllTasksComplete": job.on_all_tasks_complete,
            "onTaskFailure": str(job.spec.get("onTaskFailure", "noaction")),
            "executionInfo": execution,
        }
    )
    if job.prev_state is not None and job.prev_state_time is not None:
        body["previousState"] = job.prev_state
        body["previousStateTransitionTime"] = iso(job.prev_state_time)
    return body


def execution_info(task: Task) -> dict[str, Any]:
    """Render a task's ``executionInfo``."""
    info: dict[str, Any] = {"retryCount": task.retry_count, "requeueCount": task.requeue_count}
    if task.start_time is not None:
        info["startTime"] = iso(task.start_time)
    if task.end_time is not None and task.state == "completed":
        info["endTime"] = iso(task.end_time)
    if task.exit_code is not None and task.state == "completed":
        info["exitCode"] = task.exit_code
    if task.result is not None and task.state == "completed":
        info["result"] = task.result
    if task.failure_info is not None and task.state == "completed":
        info["failureInfo"] = task.failure_info
    if task.last_retry_time is not None:
        info["lastRetryTime"] = iso(task.last_retry_time)
    if task.last_requeue_time is not None:
        info["lastRequeueTime"] = iso(task.last_requeue_time)
    return info


def task_dir_relative(task: Task) -> str:
    """The task directory relative to its node root (``workitems/<job>/job-1/<task>``)."""
    return f"workitems/{task.job.id}/job-1/{task.id}"


def task_wire(task: Task, base: str) -> dict[str, Any]:
    """Render a task."""
    body: dict[str, Any] = {"id": task.id}
    spec = task.body()
    body.update(spec)
    if "containerSettings" in spec:
        body["containerSettings"] = without_passwords(spec["containerSettings"])
    constraints = dict(spec.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNLIMITED_DURATION)
    constraints.setdefault("retentionTime", DEFAULT_RETENTION)
    constraints["maxTaskRetryCount"] = task.max_retries
    body.update(
        {
            "url": f"{base}/jobs/{seg(task.job.id)}/tasks/{seg(task.id)}",
            "eTag": etag_for(task.last_modified),
            "lastModified": iso(task.last_modified),
            "creationTime": iso(task.creation_time),
            "state": task.state,
            "stateTransitionTime": iso(task.state_time),
            "constraints": constraints,
            "requiredSlots": task.required_slots,
            "executionInfo": execution_info(task),
        }
    )
    body.setdefault("userIdentity", {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}})
    if task.prev_state is not None and task.prev_state_time is not None:
        body["previousState"] = task.prev_state
        body["previousStateTransitionTime"] = iso(task.prev_state_time)
    if task.node_id is not None and task.pool_id is not None:
        node_url = f"{base}/pools/{seg(task.pool_id)}/nodes/{seg(task.node_id)}"
        relative = task_dir_relative(task)
        body["nodeInfo"] = {
            "affinityId": f"TVM:{task.node_id}",
            "nodeUrl": node_url,
            "poolId": task.pool_id,
            "nodeId": task.node_id,
            "taskRootDirectory": relative,
            "taskRootDirectoryUrl": f"{node_url}/files/{relative}",
        }
    return body


def task_field(task: Task, path: tuple[str, ...]) -> Any:
    """Resolve a ``$filter`` property path on a task without rendering it when possible."""
    if len(path) == 1:
        name = path[0]
        if name == "id":
            return task.id
        if name == "state":
            return task.state
        if name == "requiredSlots":
            return task.required_slots
    elif len(path) == 2 and path[0] == "executionInfo":
        name = path[1]
        if name == "result":
            return task.result if task.state == "completed" else None
        if name == "exitCode":
            return task.exit_code if task.state == "completed" else None
        if name == "retryCount":
            return task.retry_count
        if name == "requeueCount":
            return task.requeue_count
    value: Any = task_wire(task, "")
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value
