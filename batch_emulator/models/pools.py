"""Pools: creation, resize, deletion and node counts (allocation itself is done by the scheduler)."""

from __future__ import annotations

import logging
import re
from typing import Any

from batch_emulator.autoscale.samples import SampleHistory
from batch_emulator.errors import (
    CertificateRetired,
    Conflict,
    InvalidPropertyValue,
    MissingRequiredProperty,
    OperationNotImplemented,
    PoolBeingDeleted,
    PoolExists,
    PoolNotFound,
    PoolQuotaReached,
    UnsupportedImageReference,
)
from batch_emulator.models import autoscale
from batch_emulator.models.account import Account
from batch_emulator.models.containers import (
    CONFIGURATION_PATH,
    require_runtime,
    validate_container_configuration,
    validate_container_settings,
)
from batch_emulator.models.entity import Entity, find
from batch_emulator.models.mounts import validate_mount_configuration
from batch_emulator.models.node_endpoints import validate_network_configuration
from batch_emulator.models.node_extensions import validate_extensions
from batch_emulator.models.nodes import COUNTED_STATES, Node
from batch_emulator.models.validation import (
    id_key,
    optional_bool,
    optional_duration_seconds,
    optional_enum,
    optional_int,
    optional_list,
    require_object,
    require_str,
    validate_environment,
    validate_id,
    validate_resource_files,
)
from batch_emulator.timefmt import from_ts

_log = logging.getLogger("batch_emulator")
#: A gallery image id; the service refuses managed images (``.../Microsoft.Compute/images/{name}``) so, with the
#: Reason below (the Azure CLI's recording of April 2024).
_IMAGE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/"
    r"galleries/[^/]+/images/[^/]+(/versions/[^/]+)?$",
    re.IGNORECASE,
)
_IMAGE_ID_FORMAT = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/"
    "{galleryName}/images/{galleryImageName}"
)
MAX_TASK_SLOTS_PER_NODE = 256
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")


class Pool(Entity):
    """A pool: its specification as created and its allocation state."""

    __slots__ = (
        "allocation_state",
        "allocation_time",
        "autoscale_enabled_at",
        "autoscale_generation",
        "autoscale_run",
        "cores_per_node",
        "deallocation_option",
        "fill_type",
        "node_counter",
        "nodes",
        "removed",
        "resize_errors",
        "samples",
        "slots_per_node",
        "spec",
        "target_dedicated",
        "target_low_priority",
    )

    def __init__(self, pool_id: str, spec: dict[str, Any], seq: int, cores_per_node: int, now: float) -> None:
        """Create a pool record from a validated body (``spec`` excludes ``id``)."""
        super().__init__(pool_id, seq, now)
        self.spec = spec
        self.cores_per_node = cores_per_node
        self.slots_per_node = int(spec.get("taskSlotsPerNode", 1))
        self.fill_type = str(spec.get("taskSchedulingPolicy", {}).get("nodeFillType", "spread"))
        self.allocation_state = "resizing"
        self.allocation_time = now
        self.target_dedicated = int(spec.get("targetDedicatedNodes", 0))
        self.target_low_priority = int(spec.get("targetLowPriorityNodes", 0))
        self.deallocation_option = "requeue"
        self.resize_errors: list[dict[str, Any]] = []
        self.nodes: dict[str, Node] = {}
        self.node_counter = 0
        self.removed = False
        self.autoscale_run: dict[str, Any] | None = None  # the last scheduled evaluation (wire JSON)
        self.autoscale_enabled_at: float | None = None  # the last enableautoscale (they are rate-limited)
        self.autoscale_generation = 0  # bumps when autoscale settings change; stale timers compare it
        self.samples: SampleHistory | None = None  # metric history for autoscale formulas (not persisted)

    @property
    def container_configuration(self) -> dict[str, Any] | None:
        """The pool's ``virtualMachineConfiguration.containerConfiguration`` (wire JSON), if any."""
        value = (self.spec.get("virtualMachineConfiguration") or {}).get("containerConfiguration")
        return value if isinstance(value, dict) and value else None

    @property
    def start_task(self) -> dict[str, Any] | None:
        """The pool's ``startTask`` (wire JSON), if any."""
        value = self.spec.get("startTask")
        return value if isinstance(value, dict) else None

    def current_nodes(self, dedicated: bool) -> int:
        """Nodes of one kind in the pool (leaving ones included until they are gone)."""
        return sum(1 for node in self.nodes.values() if node.is_dedicated == dedicated)


def validate_start_task(start_task: object, path: str = "startTask", *, containers: bool = False) -> dict[str, Any]:
    """Check a pool ``startTask`` body.

    Args:
        start_task: The body.
        path: Its property path in errors.
        containers: Whether the pool has a ``containerConfiguration`` (``containerSettings`` needs one).

    Returns:
        The start task, with ``waitForSuccess`` defaulted to true as Batch does.

    Raises:
        BatchError: an invalid or unsupported property.
    """
    body = require_object(start_task, path)
    require_str(body, "commandLine", path=f"{path}.commandLine")
    validate_resource_files(optional_list(body, "resourceFiles", path=f"{path}.resourceFiles"), f"{path}.resourceFiles")
    validate_environment(
        optional_list(body, "environmentSettings", path=f"{path}.environmentSettings"), f"{path}.environmentSettings"
    )
    optional_int(body, "maxTaskRetryCount", 0, minimum=-1, path=f"{path}.maxTaskRetryCount")
    if body.get("containerSettings") is not None:
        if not containers:
            raise InvalidPropertyValue(
                f"{path}.containerSettings",
                "…",
                f"A start task runs in a container only on a pool with {CONFIGURATION_PATH}.",
            )
        validate_container_settings(body["containerSettings"], f"{path}.containerSettings")
    result = dict(body)
    result["waitForSuccess"] = optional_bool(body, "waitForSuccess", True, path=f"{path}.waitForSuccess")
    return result


def _validate_vm_configuration(account: Account, body: dict[str, Any], now: float) -> dict[str, Any]:
    config = body.get("virtualMachineConfiguration")
    if config is None:
        if body.get("cloudServiceConfiguration") is not None:
            raise InvalidPropertyValue(
                "cloudServiceConfiguration", "…", "Cloud service pools are retired; use virtualMachineConfiguration."
            )
        raise MissingRequiredProperty("virtualMachineConfiguration")
    config = require_object(config, "virtualMachineConfiguration")
    reference = config.get("imageReference")
    if reference is None:
        raise MissingRequiredProperty("virtualMachineConfiguration.imageReference")
    reference = require_object(reference, "virtualMachineConfiguration.imageReference")
    sku = require_str(config, "nodeAgentSKUId", path="virtualMachineConfiguration.nodeAgentSKUId")
    encryption = config.get("diskEncryptionConfiguration")
    if isinstance(encryption, dict) and encryption.get("customerManagedKey") is not None:
        # a pool made here never has an identity; recorded by the JavaScript SDK's tests (2026)
        raise InvalidPropertyValue("identity", None, "Pool Identity is required when using CustomerManagedKey.")
    image_id = reference.get("virtualMachineImageId")
    if image_id and not _IMAGE_ID.match(str(image_id)):
        raise InvalidPropertyValue(
            "virtualMachineImageId",
            image_id,
            f"The specified resource id must be of the format {_IMAGE_ID_FORMAT}/versions/{{galleryImageVersionName}}"
            f" or {_IMAGE_ID_FORMAT}",
        )
    if image_id or reference.get("sharedGalleryImageId") or reference.get("communityGalleryImageId"):
        raise OperationNotImplemented("custom images (virtualMachineImageId)")
    image = account.catalog.find_image(reference)
    if image is None:
        publisher, offer, sku_name = (str(reference.get(name, "")) for name in ("publisher", "offer", "sku"))
        raise UnsupportedImageReference(publisher, offer, sku_name, "(See GET /supportedimages.)")
    if image["nodeAgentSKUId"].lower() != sku.lower():
        raise InvalidPropertyValue(
            "nodeAgentSKUId",
            sku,
            f"The node agent SKU does not match the image; use {image['nodeAgentSKUId']!r}.",
        )
    if account.catalog.retired(image, from_ts(now)):
        _log.warning(
            "image %s (%s) is past its Batch end of life (%s); accepted as the service accepts it",
            "/".join(image["imageReference"][name] for name in ("publisher", "offer", "sku")),
            image["nodeAgentSKUId"],
            image["batchSupportEndOfLife"],
        )
    if config.get("containerConfiguration") is not None:
        require_runtime(account, validate_container_configuration(config["containerConfiguration"]))
    validate_extensions(config)
    return config


def create_pool(account: Account, body: object, now: float) -> Pool:
    """Validate a ``BatchPoolCreateOptions`` body and add the pool (nodes are allocated later).

    Args:
        account: The account.
        body: The parsed JSON body.
        now: Current time.

    Returns:
        The new pool, in allocation state ``resizing``.

    Raises:
        BatchError: invalid body (400), unsupported feature (501), duplicate id or quota (409).
    """
    data = require_object(body)
    pool_id = validate_id(data.get("id"))
    key = id_key(pool_id)
    vm_size = require_str(data, "vmSize")
    size = account.catalog.vm_size(vm_size)
    if size is None:
        raise InvalidPropertyValue("vmSize", vm_size, "The VM size is not in the local Batch service's catalogue.")
    if size.retired:
        _log.warning(
            "VM size %s was retired by Azure on %s; accepted as the service accepts it", size.name, size.retired
        )
    _validate_vm_configuration(account, data, now)
    optional_bool(data, "enableAutoScale", False)
    scaling = autoscale.create_settings(data)
    optional_int(data, "targetDedicatedNodes", 0, minimum=0)
    optional_int(data, "targetLowPriorityNodes", 0, minimum=0)
    optional_int(data, "taskSlotsPerNode", 1, minimum=1, maximum=MAX_TASK_SLOTS_PER_NODE)
    optional_duration_seconds(data, "resizeTimeout")
    policy = data.get("taskSchedulingPolicy")
    if policy is not None:
        policy = require_object(policy, "taskSchedulingPolicy")
        policy["nodeFillType"] = optional_enum(
            policy, "nodeFillType", ("spread", "pack"), "spread", path="taskSchedulingPolicy.nodeFillType"
        )
        optional_enum(
            policy, "jobDefaultOrder", ("none", "creationtime"), "none", path="taskSchedulingPolicy.jobDefaultOrder"
        )
    validate_mount_configuration(data)
    validate_network_configuration(data)
    if data.get("certificateReferences"):
        raise CertificateRetired()
    if data.get("applicationPackageReferences"):
        raise OperationNotImplemented("pool applicationPackageReferences")
    spec = {name: value for name, value in data.items() if name not in ("id", *autoscale.SETTINGS)}
    spec.update(scaling)
    spec["vmSize"] = vm_size.lower()
    if data.get("startTask") is not None:
        containers = bool(data["virtualMachineConfiguration"].get("containerConfiguration"))
        spec["startTask"] = validate_start_task(data["startTask"], containers=containers)
    if key in account.pools:
        raise PoolExists()
    if len(account.pools) >= account.quotas.pools:
        raise PoolQuotaReached()
    pool = Pool(pool_id, spec, account.next_seq(), size.cores, now)
    account.pools[key] = pool
    account.changes.pools.add(pool)
    account.pending_pools.add(pool)
    if autoscale.is_enabled(pool):
        account.pending_autoscale.add(pool)
    account.notify()
    return pool


def get_pool(account: Account, pool_id: str) -> Pool:
    """Return a pool by id (case-insensitive).

    Raises:
        PoolNotFound: no such pool.
    """
    return find(account.pools, pool_id, PoolNotFound)


def active_pool(account: Account, pool_id: str) -> Pool:
    pool = get_pool(account, pool_id)
    if pool.state == "deleting":
        raise PoolBeingDeleted()
    return pool


def resize_options(body: object) -> dict[str, Any]:
    """Check a resize request's body (``BatchPoolResizeOptions``) before its pool is looked up, as Batch does.

    Batch answers an empty resize body with ``MissingRequiredProperty`` even for a pool that does not exist
    (recorded: the Java SDK's ``BatchErrorTests.testResizeErrorCases``).

    Raises:
        BatchError: not an object, or neither target node count given.
    """
    data = require_object(body)
    if data.get("targetDedicatedNodes") is None and data.get("targetLowPriorityNodes") is None:
        raise MissingRequiredProperty("targetDedicatedNodes and/or targetLowPriorityNodes")
    return data


def resize_pool(account: Account, pool_id: str, body: object, now: float) -> Pool:
    """Change a pool's target node counts (``BatchPoolResizeOptions``).

    Returns:
        The pool, now ``resizing``.

    Raises:
        BatchError: unknown pool, pool being deleted, invalid body.
    """
    data = require_object(body)
    pool = active_pool(account, pool_id)
    if autoscale.is_enabled(pool):
        raise Conflict("The pool has automatic scaling enabled; disable autoscale before resizing it.")
    dedicated = optional_int(data, "targetDedicatedNodes", pool.target_dedicated, minimum=0)
    low_priority = optional_int(data, "targetLowPriorityNodes", pool.target_low_priority, minimum=0)
    option = optional_enum(data, "nodeDeallocationOption", DEALLOCATION_OPTIONS, "requeue")
    optional_duration_seconds(data, "resizeTimeout")
    _set_targets(account, pool, dedicated, low_priority, option, now)
    return pool


def _set_targets(account: Account, pool: Pool, dedicated: int, low_priority: int, option: str, now: float) -> None:
    pool.target_dedicated = dedicated
    pool.target_low_priority = low_priority
    pool.deallocation_option = option
    pool.resize_errors = []
    _start_resizing(account, pool, now)


def apply_targets(account: Account, pool: Pool, dedicated: int, low_priority: int, option: str, now: float) -> None:
    """Resize a pool to an autoscale evaluation's targets (nothing happens when they are the current ones)."""
    if pool.state != "active" or (dedicated, low_priority) == (pool.target_dedicated, pool.target_low_priority):
        return
    _set_targets(account, pool, dedicated, low_priority, option, now)


def stop_resize(account: Account, pool_id: str, now: float) -> Pool:
    """Stop an ongoing resize: nodes not allocated yet are given up; the targets stay as requested (as in Batch).

    The pool goes ``stopping`` until nodes already being created are there, then ``steady`` with a
    ``ResizeStopped`` resize error for each kind of node whose target was not reached.

    Raises:
        BatchError: unknown pool or pool being deleted.
    """
    pool = active_pool(account, pool_id)
    if pool.allocation_state != "steady":
        for node in pool.nodes.values():
            if node.state == "creating" and node.removing is None:  # VMs not allocated yet are given up
                node.removing = "requeue"
        pool.resize_errors = [
            {
                "code": "ResizeStopped",
                "message": f"Desired number of {kind} nodes could not be allocated due to a stop resize operation",
            }
            for kind, dedicated, target in (
                ("dedicated", True, pool.target_dedicated),
                ("low priority", False, pool.target_low_priority),
            )
            # Only a target not reached by allocation: a kind shrinking to its target is not an allocation left
            # undone (and whether the scheduler has marked its surplus nodes yet must not change the answer).
            if sum(1 for n in pool.nodes.values() if n.is_dedicated == dedicated and n.removing is None) < target
        ]
        _start_resizing(account, pool, now, state="stopping")
    return pool


def remove_nodes(account: Account, pool_id: str, body: object, now: float) -> Pool:
    """Remove specific nodes (``BatchNodeRemoveOptions``): the targets drop by their number.

    Raises:
        BatchError: unknown pool or node, invalid body.
    """
    from batch_emulator.models.nodes import find_node

    data = require_object(body)
    pool = active_pool(account, pool_id)
    names = optional_list(data, "nodeList")
    if not names:
        raise MissingRequiredProperty("nodeList")
    option = optional_enum(data, "nodeDeallocationOption", DEALLOCATION_OPTIONS, "requeue")
    nodes = [find_node(pool, str(name)) for name in names]
    for node in nodes:
        if node.removing is None:
            node.removing = option
            if node.is_dedicated:
                pool.target_dedicated = max(0, pool.target_dedicated - 1)
            else:
                pool.target_low_priority = max(0, pool.target_low_priority - 1)
    _start_resizing(account, pool, now)
    return pool


def _start_resizing(account: Account, pool: Pool, now: float, state: str = "resizing") -> None:
    pool.allocation_state = state
    pool.allocation_time = now
    pool.touch(now)
    account.changes.pools.add(pool)
    account.pending_pools.add(pool)
    account.notify()


def delete_pool(account: Account, pool_id: str, now: float) -> Pool:
    """Mark a pool ``deleting``; the scheduler stops its work and removes it.

    Raises:
        PoolNotFound: no such pool.
        PoolBeingDeleted: the pool is being deleted already (409, as the REST reference says of a repeated delete).
    """
    pool = active_pool(account, pool_id)
    pool.state = "deleting"
    pool.state_time = now
    pool.touch(now)
    account.changes.pools.add(pool)
    account.pending_pools.add(pool)
    account.notify()
    return pool


def update_pool_properties(account: Account, pool_id: str, body: object, now: float, *, replace: bool) -> Pool:
    """Apply ``PATCH /pools/{id}`` (merge) or ``POST .../updateproperties`` (replace) for the supported fields.

    Supported: ``startTask``, ``metadata``, ``displayName``, ``targetNodeCommunicationMode`` (kept and shown;
    local nodes need no communication mode). Other fields answer 501. All or nothing: every field is checked
    before any changes.

    Raises:
        BatchError: unknown pool, invalid body, unsupported field.
    """
    data = require_object(body)
    pool = active_pool(account, pool_id)
    return apply_pool_properties(account, pool, pool_property_changes(pool, data, replace=replace), now)


def pool_property_changes(pool: Pool, data: dict[str, Any], *, replace: bool) -> dict[str, Any]:
    """Check a property update without applying it (see :func:`update_pool_properties`).

    Returns:
        The pool ``spec`` entries to set; a None value removes the entry.

    Raises:
        BatchError: an invalid value or an unsupported field.
    """
    supported = {
        "startTask",
        "metadata",
        "displayName",
        "applicationPackageReferences",
        "certificateReferences",
        "targetNodeCommunicationMode",
    }
    for name, value in data.items():
        if name not in supported:
            raise OperationNotImplemented(f"updating the pool property {name}")
        if name == "certificateReferences" and value:
            raise CertificateRetired()
        if name == "applicationPackageReferences" and value:
            raise OperationNotImplemented(f"pool {name}")
    changes: dict[str, Any] = {}
    if "startTask" in data and data["startTask"] is not None:
        containers = pool.container_configuration is not None
        changes["startTask"] = validate_start_task(data["startTask"], containers=containers)
    elif replace:
        changes["startTask"] = None
    if "metadata" in data or replace:
        # An empty list removes the metadata, and the service then shows none (as for applicationPackageReferences).
        changes["metadata"] = optional_list(data, "metadata") or None
    if "displayName" in data:
        changes["displayName"] = data["displayName"]
    if data.get("targetNodeCommunicationMode") is not None:
        changes["targetNodeCommunicationMode"] = optional_enum(
            data, "targetNodeCommunicationMode", ("default", "classic", "simplified"), "default"
        )
    return changes


def apply_pool_properties(account: Account, pool: Pool, changes: dict[str, Any], now: float) -> Pool:
    """Apply what :func:`pool_property_changes` checked (cannot fail)."""
    for name, value in changes.items():
        if value is None and name in ("startTask", "metadata"):
            pool.spec.pop(name, None)
        else:
            pool.spec[name] = value
    pool.touch(now)
    account.changes.pools.add(pool)
    return pool


def node_counts(account: Account) -> list[dict[str, Any]]:
    """Return ``/nodecounts`` entries: per pool, node counts by state for dedicated and spot nodes."""
    result = []
    for pool in account.pools.values():
        entry: dict[str, Any] = {"poolId": pool.id}
        for dedicated, label in ((True, "dedicated"), (False, "lowPriority")):
            counts = dict.fromkeys(COUNTED_STATES.values(), 0)
            total = 0
            for node in pool.nodes.values():
                if node.is_dedicated == dedicated:
                    counts[COUNTED_STATES.get(node.state, "unknown")] += 1
                    total += 1
            counts["total"] = total
            entry[label] = counts
        result.append(entry)
    return result
