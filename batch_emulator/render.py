"""Wire JSON of pools, nodes, jobs and tasks (the models know nothing of URLs and field names)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from batch_emulator.models import stats
from batch_emulator.models.job_tasks import NodeRun
from batch_emulator.models.jobs import Job
from batch_emulator.models.multi_instance import Subtask
from batch_emulator.models.node_endpoints import LOOPBACK_ADDRESS, inbound_endpoints, remote_login_port
from batch_emulator.models.node_extensions import NodeExtension
from batch_emulator.models.nodes import Node
from batch_emulator.models.pools import Pool
from batch_emulator.models.schedules import Schedule
from batch_emulator.models.tasks import Task
from batch_emulator.timefmt import UNLIMITED_DURATION, etag_for, format_duration, iso
from batch_emulator.usage import Usage

NODE_AGENT_VERSION = "1.0.0-localbatch"
DEFAULT_RESIZE_TIMEOUT = "PT15M"
DEFAULT_RETENTION = "P7D"


def seg(value: str) -> str:
    """Percent-encode one path segment."""
    return quote(value, safe="")


def metadata(base: str, entity_set: str, element: bool) -> str:
    """The ``odata.metadata`` value of a single entity or a list."""
    return f"{base}/$metadata#{entity_set}" + ("/@Element" if element else "")


def _user_account(account: dict[str, Any], windows: bool) -> dict[str, Any]:
    """A pool user account as Batch shows it: never its password or SSH key, with the defaults filled in."""
    shown = {key: value for key, value in account.items() if key != "password"}
    shown.setdefault("elevationLevel", "nonadmin")
    if "linuxUserConfiguration" in shown:
        shown["linuxUserConfiguration"] = {
            key: value for key, value in shown["linuxUserConfiguration"].items() if key != "sshPrivateKey"
        }
    if windows:
        shown["windowsUserConfiguration"] = {"loginMode": "batch", **(shown.get("windowsUserConfiguration") or {})}
    return shown


def _data_disk(disk: dict[str, Any]) -> dict[str, Any]:
    """A data disk with Batch's defaults: the storage type sits in ``managedDisk`` when the disk has one."""
    managed = disk.get("managedDisk")
    if isinstance(managed, dict):
        return {"caching": "none", **disk, "managedDisk": {"storageAccountType": "standard_lrs", **managed}}
    return {"caching": "none", "storageAccountType": "standard_lrs", **disk}


def _vm_configuration(config: dict[str, Any]) -> dict[str, Any]:
    """``virtualMachineConfiguration`` with the defaults Batch fills in (image version, OS and data disk settings)."""
    shown = dict(config)
    shown["imageReference"] = {**config.get("imageReference", {})}
    if "virtualMachineImageId" not in shown["imageReference"]:
        shown["imageReference"].setdefault("version", "latest")
    os_disk = config.get("osDisk")
    if isinstance(os_disk, dict):
        managed = os_disk.get("managedDisk")
        shown["osDisk"] = {
            "ephemeralOSDiskSettings": {},
            **os_disk,
            "managedDisk": {"storageAccountType": "standard_lrs", **(managed if isinstance(managed, dict) else {})},
        }
    if isinstance(config.get("dataDisks"), list):
        shown["dataDisks"] = [_data_disk(disk) for disk in config["dataDisks"] if isinstance(disk, dict)]
    return shown


def _network_configuration(config: dict[str, Any]) -> dict[str, Any]:
    """``networkConfiguration`` with Batch's defaults (assignment scope, accelerated networking, NSG port ranges)."""
    shown: dict[str, Any] = {
        "dynamicVNetAssignmentScope": "none",
        **config,
        "enableAcceleratedNetworking": bool(config.get("enableAcceleratedNetworking", False)),
    }
    endpoints = config.get("endpointConfiguration")
    if isinstance(endpoints, dict) and isinstance(endpoints.get("inboundNATPools"), list):
        shown["endpointConfiguration"] = {
            **endpoints,
            "inboundNATPools": [
                {
                    **nat_pool,
                    "networkSecurityGroupRules": [
                        {"sourcePortRanges": ["*"], **rule} for rule in nat_pool.get("networkSecurityGroupRules") or []
                    ],
                }
                if isinstance(nat_pool, dict) and nat_pool.get("networkSecurityGroupRules")
                else nat_pool
                for nat_pool in endpoints["inboundNATPools"]
            ],
        }
    return shown


def _pool_spec(pool: Pool) -> dict[str, Any]:
    """The pool's specification as Batch echoes it (secrets removed, defaults filled in)."""
    spec = dict(pool.spec)
    config = spec.get("virtualMachineConfiguration") or {}
    windows = str(config.get("nodeAgentSKUId", "")).lower().startswith("batch.node.windows")
    spec["virtualMachineConfiguration"] = _vm_configuration(config)
    if isinstance(spec.get("userAccounts"), list):
        spec["userAccounts"] = [_user_account(item, windows) for item in spec["userAccounts"] if isinstance(item, dict)]
    if isinstance(spec.get("networkConfiguration"), dict):
        spec["networkConfiguration"] = _network_configuration(spec["networkConfiguration"])
    return spec


#: Properties Batch never returns: passwords, mount credentials and extension secrets.
SECRET_PROPERTIES = frozenset({"accountKey", "sasKey", "password", "protectedSettings"})


def without_secrets(value: Any) -> Any:
    """A copy of wire JSON without the :data:`SECRET_PROPERTIES` of any object in it (nothing is changed in place)."""
    if isinstance(value, dict):
        return {key: without_secrets(item) for key, item in value.items() if key not in SECRET_PROPERTIES}
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value


def pool_wire(pool: Pool, base: str) -> dict[str, Any]:
    """Render a pool."""
    body: dict[str, Any] = {"id": pool.id}
    body.update(_pool_spec(pool))
    for name in ("virtualMachineConfiguration", "startTask", "mountConfiguration", "userAccounts"):
        if name in body:
            body[name] = without_secrets(body[name])
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
            "enableAutoScale": bool(pool.spec.get("enableAutoScale", False)),
            "enableInterNodeCommunication": bool(pool.spec.get("enableInterNodeCommunication", False)),
            "taskSlotsPerNode": pool.slots_per_node,
            "taskSchedulingPolicy": {
                "nodeFillType": pool.fill_type.capitalize(),  # the service answers "Spread"/"Pack"
                "jobDefaultOrder": str(pool.spec.get("taskSchedulingPolicy", {}).get("jobDefaultOrder", "none")),
            },
        }
    )
    if pool.resize_errors and pool.allocation_state != "stopping":  # reported once the stop has completed
        body["resizeErrors"] = pool.resize_errors
    # The service shows it once an allocation has completed with nodes (recordings: absent while resizing or empty).
    if pool.allocation_state == "steady" and (body["currentDedicatedNodes"] or body["currentLowPriorityNodes"]):
        target = str(pool.spec.get("targetNodeCommunicationMode") or "default").lower()
        body["currentNodeCommunicationMode"] = "simplified" if target == "simplified" else "classic"
    if pool.autoscale_run is not None and body["enableAutoScale"]:
        body["autoScaleRun"] = pool.autoscale_run
    return body


def node_image(pool: Pool) -> dict[str, Any]:
    """A node's image reference: the pool's, with ``version`` and the ``exactVersion`` it runs."""
    reference: dict[str, Any] = _vm_configuration(pool.spec.get("virtualMachineConfiguration") or {})["imageReference"]
    if "version" in reference:
        reference["exactVersion"] = reference["version"]
    return reference


def node_wire(node: Node, base: str) -> dict[str, Any]:
    """Render a compute node."""
    pool = node.pool
    url = node_url(node, base)
    body: dict[str, Any] = {
        "id": node.id,
        "url": url,
        "state": node.state,
        "schedulingState": node.scheduling_state,
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
        "virtualMachineInfo": {"imageReference": node_image(pool)},
        "endpointConfiguration": {"inboundEndpoints": inbound_endpoints(node)},
    }
    if node.last_boot_time is not None:  # the node agent reports once the node has booted
        body["lastBootTime"] = iso(node.last_boot_time)
        body["nodeAgentInfo"] = {"version": NODE_AGENT_VERSION, "lastUpdateTime": iso(node.last_boot_time)}
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
        body["startTask"] = without_secrets(pool.start_task)
    if node.start_task_info is not None:
        body["startTaskInfo"] = node.start_task_info
    if node.errors:
        body["errors"] = node.errors
    return body


def node_url(node: Node, base: str) -> str:
    """The URL of a node."""
    return f"{base}/pools/{seg(node.pool.id)}/nodes/{seg(node.id)}"


def remote_login_wire(node: Node, base: str) -> dict[str, Any]:
    """Render ``GET .../remoteloginsettings``: loopback and the node's SSH frontend port."""
    return {
        "odata.metadata": f"{base}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.RemoteLoginSettings",
        "remoteLoginIPAddress": LOOPBACK_ADDRESS,
        "remoteLoginPort": remote_login_port(node),
    }


def upload_logs_wire(base: str, directory: str, count: int) -> dict[str, Any]:
    """Render the answer of ``POST .../uploadbatchservicelogs``."""
    return {
        "odata.metadata": f"{base}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.UploadBatchServiceLogsResult",
        "virtualDirectoryName": directory,
        "numberOfFilesUploaded": count,
    }


def node_extension_wire(extension: NodeExtension) -> dict[str, Any]:
    """Render one node VM extension (``protectedSettings`` are never shown)."""
    spec: dict[str, Any] = without_secrets(extension.spec)
    spec.setdefault("enableAutomaticUpgrade", False)
    view: dict[str, Any] = {}
    if extension.provisioning_state == "Succeeded":
        view = {
            "name": spec.get("name"),
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": "Enable succeeded",
                    "time": iso(extension.since),
                }
            ],
        }
    return {"provisioningState": extension.provisioning_state, "vmExtension": spec, "instanceView": view}


def job_wire(job: Job, base: str) -> dict[str, Any]:
    """Render a job."""
    body: dict[str, Any] = {"id": job.id}
    body.update(without_secrets(job.spec))
    constraints = dict(job.spec.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNLIMITED_DURATION)
    constraints.setdefault("maxTaskRetryCount", 0)
    execution: dict[str, Any] = {"startTime": iso(job.creation_time)}
    if job.pool_id:  # none when its auto pool could not be created
        execution["poolId"] = job.pool_id
    if job.end_time is not None:
        execution["endTime"] = iso(job.end_time)
    if job.terminate_reason is not None:
        execution["terminateReason"] = job.terminate_reason
    if job.scheduling_error is not None:
        execution["schedulingError"] = job.scheduling_error
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


def job_specification_wire(spec: dict[str, Any]) -> dict[str, Any]:
    """A schedule's ``jobSpecification`` with the defaults the service fills in."""
    body = {
        "priority": 0,
        "maxParallelTasks": -1,
        "allowTaskPreemption": False,
        "usesTaskDependencies": False,
        "onAllTasksComplete": "noaction",
        "onTaskFailure": "noaction",
    }
    body.update(without_secrets(spec))
    constraints = dict(spec.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNLIMITED_DURATION)
    constraints.setdefault("maxTaskRetryCount", 0)
    body["constraints"] = constraints
    return body


def schedule_wire(schedule: Schedule, base: str) -> dict[str, Any]:
    """Render a job schedule."""
    body: dict[str, Any] = {
        "id": schedule.id,
        "url": f"{base}/jobschedules/{seg(schedule.id)}",
        "eTag": etag_for(schedule.last_modified),
        "lastModified": iso(schedule.last_modified),
        "creationTime": iso(schedule.creation_time),
        "state": schedule.state,
        "stateTransitionTime": iso(schedule.state_time),
    }
    if schedule.prev_state is not None and schedule.prev_state_time is not None:
        body["previousState"] = schedule.prev_state
        body["previousStateTransitionTime"] = iso(schedule.prev_state_time)
    if "displayName" in schedule.spec:
        body["displayName"] = schedule.spec["displayName"]
    body["schedule"] = dict(schedule.schedule)
    body["jobSpecification"] = job_specification_wire(schedule.spec["jobSpecification"])
    if schedule.spec.get("metadata"):
        body["metadata"] = schedule.spec["metadata"]
    execution: dict[str, Any] = {}
    if schedule.next_run is not None and schedule.state == "active":
        execution["nextRunTime"] = iso(schedule.next_run)
    if schedule.job_keys:
        job_id = f"{schedule.id}:job-{schedule.job_counter}"
        execution["recentJob"] = {"url": f"{base}/jobs/{seg(job_id)}", "id": job_id}
    if schedule.end_time is not None:
        execution["endTime"] = iso(schedule.end_time)
    body["executionInfo"] = execution
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
        body["containerSettings"] = without_secrets(spec["containerSettings"])
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
        body["nodeInfo"] = node_info_wire(task.pool_id, task.node_id, task_dir_relative(task), base)
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


def _side_run_info(run: NodeRun, relative: str, node_url: str, *, preparation: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "startTime": iso(run.start_time),
        "state": run.state,
        "taskRootDirectory": relative,
        "taskRootDirectoryUrl": f"{node_url}/files/{relative}",
    }
    if preparation:
        info["retryCount"] = run.retry_count
        if run.last_retry_time is not None:
            info["lastRetryTime"] = iso(run.last_retry_time)
    if run.state == "completed":
        info.update(_outcome_fields(run.end_time, run.exit_code, run.failure_info, run.result))
    return info


def _outcome_fields(
    end_time: float | None, exit_code: int | None, failure_info: dict[str, Any] | None, result: str | None
) -> dict[str, Any]:
    """``endTime``, ``exitCode``, ``failureInfo`` and ``result`` of a completed run (those that are set)."""
    fields: dict[str, Any] = {}
    if end_time is not None:
        fields["endTime"] = iso(end_time)
    if exit_code is not None:
        fields["exitCode"] = exit_code
    if failure_info is not None:
        fields["failureInfo"] = failure_info
    if result is not None:
        fields["result"] = result
    return fields


def node_info_wire(pool_id: str, node_id: str, relative: str, base: str) -> dict[str, Any]:
    """The ``nodeInfo`` of a task or subtask that ran in ``relative`` (a directory under the node root)."""
    node_url = f"{base}/pools/{seg(pool_id)}/nodes/{seg(node_id)}"
    return {
        "affinityId": f"TVM:{node_id}",
        "nodeUrl": node_url,
        "poolId": pool_id,
        "nodeId": node_id,
        "taskRootDirectory": relative,
        "taskRootDirectoryUrl": f"{node_url}/files/{relative}",
    }


def preparation_status_wire(job: Job, preparation: NodeRun, release: NodeRun | None, base: str) -> dict[str, Any]:
    """Render one node's entry of ``jobpreparationandreleasetaskstatus``."""
    node_url = f"{base}/pools/{seg(preparation.pool_id)}/nodes/{seg(preparation.node_id)}"
    prep_id = str(job.spec["jobPreparationTask"]["id"])
    body: dict[str, Any] = {
        "poolId": preparation.pool_id,
        "nodeId": preparation.node_id,
        "nodeUrl": node_url,
        "jobPreparationTaskExecutionInfo": _side_run_info(
            preparation, f"workitems/{job.id}/job-1/{prep_id}", node_url, preparation=True
        ),
    }
    if release is not None:
        release_id = str(job.spec["jobReleaseTask"]["id"])
        body["jobReleaseTaskExecutionInfo"] = _side_run_info(
            release, f"workitems/{job.id}/job-1/{release_id}", node_url, preparation=False
        )
    return body


def subtask_wire(task: Task, subtask: Subtask, base: str) -> dict[str, Any]:
    """Render one subtask of a multi-instance task (``BatchSubtask``)."""
    node = subtask.node
    body: dict[str, Any] = {
        "id": subtask.id,
        "nodeInfo": node_info_wire(node.pool.id, node.id, task_dir_relative(task), base),
        "state": subtask.state,
        "stateTransitionTime": iso(subtask.state_time),
    }
    if subtask.prev_state is not None and subtask.prev_state_time is not None:
        body["previousState"] = subtask.prev_state
        body["previousStateTransitionTime"] = iso(subtask.prev_state_time)
    if subtask.start_time is not None:
        body["startTime"] = iso(subtask.start_time)
    if subtask.state == "completed":
        body.update(_outcome_fields(subtask.end_time, subtask.exit_code, subtask.failure_info, subtask.result))
    return body


# --- statistics (``$expand=stats``) ------------------------------------------------------------------------------
GIB = 1024**3


def _seconds(value: float) -> str:
    return format_duration(timedelta(seconds=value))


def _usage_fields(usage: Usage) -> dict[str, Any]:
    return {
        "userCPUTime": _seconds(usage.user_cpu),
        "kernelCPUTime": _seconds(usage.kernel_cpu),
        "wallClockTime": _seconds(usage.wall),
        "readIOps": str(usage.read_ops),
        "writeIOps": str(usage.write_ops),
        "readIOGiB": usage.read_bytes / GIB,
        "writeIOGiB": usage.write_bytes / GIB,
    }


def task_stats(task: Task, base: str, now: float) -> dict[str, Any]:
    """A task's ``stats``: what its runs used."""
    body = {"url": f"{base}/jobs/{seg(task.job.id)}/tasks/{seg(task.id)}", "startTime": iso(task.creation_time)}
    body["lastUpdateTime"] = iso(now)
    body.update(_usage_fields(task.usage))
    body["waitTime"] = _seconds(stats.task_wait_seconds(task))
    return body


def _totals_wire(url: str, start: float, now: float, totals: stats.JobTotals) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "startTime": iso(start), "lastUpdateTime": iso(now)}
    body.update(_usage_fields(totals.usage))
    body.update(
        {
            "numSucceededTasks": str(totals.succeeded),
            "numFailedTasks": str(totals.failed),
            "numTaskRetries": str(totals.retries),
            "waitTime": _seconds(totals.wait_seconds),
        }
    )
    return body


def job_stats(job: Job, base: str, now: float) -> dict[str, Any]:
    """A job's ``stats``: the sum over its tasks."""
    return _totals_wire(f"{base}/jobs/{seg(job.id)}", job.creation_time, now, stats.job_totals([job]))


def schedule_stats(schedule: Schedule, jobs: list[Job], base: str, now: float) -> dict[str, Any]:
    """A job schedule's ``stats``: the sum over the jobs it made that still exist."""
    url = f"{base}/jobschedules/{seg(schedule.id)}"
    return _totals_wire(url, schedule.creation_time, now, stats.job_totals(jobs))


def pool_stats(pool: Pool, measures: stats.PoolMeasures, base: str, now: float) -> dict[str, Any]:
    """A pool's ``stats``: dedicated core time, and the resources its tasks used."""
    start, update = iso(pool.creation_time), iso(now)
    usage = measures.usage
    usage_stats = {"startTime": start, "lastUpdateTime": update, "dedicatedCoreTime": _seconds(measures.core_seconds)}
    return {
        "url": f"{base}/pools/{seg(pool.id)}",
        "startTime": start,
        "lastUpdateTime": update,
        "usageStats": usage_stats,
        "resourceStats": {
            "startTime": start,
            "lastUpdateTime": update,
            "avgCPUPercentage": measures.average_cpu,
            "avgMemoryGiB": 0.0,
            "peakMemoryGiB": 0.0,
            "avgDiskGiB": 0.0,
            "peakDiskGiB": 0.0,
            "diskReadIOps": str(usage.read_ops),
            "diskWriteIOps": str(usage.write_ops),
            "diskReadGiB": usage.read_bytes / GIB,
            "diskWriteGiB": usage.write_bytes / GIB,
            "networkReadGiB": 0.0,
            "networkWriteGiB": 0.0,
        },
    }


def usage_metrics_wire(record: dict[str, Any]) -> dict[str, Any]:
    """One ``poolusagemetrics`` entry."""
    return {
        "poolId": record["poolId"],
        "startTime": iso(float(record["start"])),
        "endTime": iso(float(record["end"])),
        "vmSize": record["vmSize"],
        "totalCoreHours": record["hours"],
    }
