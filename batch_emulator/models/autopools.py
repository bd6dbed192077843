"""Auto pools (``poolInfo.autoPoolSpecification``): a pool created for a job (or a job schedule) and deleted
with it unless ``keepAlive``.

The pool's id is ``<autoPoolIdPrefix>_<GUID>``, or the bare upper-case GUID without a prefix, as the service
names them. ``poolLifetimeOption: job`` ties the pool to one job: it is created with the job and deleted when
the job completes or is deleted. ``jobschedule`` is for job schedules: the schedule calls
:func:`create_auto_pool` when it creates its first job and :func:`release_auto_pool` when it ends (on a job it
is refused, as in Batch). The spec is validated with the pool's own rules when the pool is created.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import InvalidPropertyValue, MissingRequiredProperty, PoolNotFound
from batch_emulator.models.pools import create_pool, delete_pool
from batch_emulator.models.validation import id_key, optional_bool, optional_enum, require_object

if TYPE_CHECKING:
    from batch_emulator.models.account import Account
    from batch_emulator.models.pools import Pool

LIFETIMES = ("job", "jobschedule")
#: The pool properties the service fills in an auto pool specification it shows (from recorded traffic).
POOL_DEFAULTS: dict[str, Any] = {
    "taskSlotsPerNode": 1,
    "taskSchedulingPolicy": {"nodeFillType": "Spread"},
    "resizeTimeout": "PT15M",
    "targetDedicatedNodes": 0,
    "targetLowPriorityNodes": 0,
    "enableAutoScale": False,
    "enableInterNodeCommunication": False,
}
MAX_PREFIX_LENGTH = 20
_PREFIX = re.compile(r"^[A-Za-z0-9_-]+$")


def validate(value: object, *, owner: str) -> dict[str, Any]:
    """Check an ``autoPoolSpecification`` for an owner (``job`` or ``jobschedule``) and fill its defaults.

    Raises:
        BatchError: a missing or invalid property (400).
    """
    path = "poolInfo.autoPoolSpecification"
    spec = dict(require_object(value, path))
    if spec.get("poolLifetimeOption") is None:
        raise MissingRequiredProperty(f"{path}.poolLifetimeOption")
    lifetime = optional_enum(spec, "poolLifetimeOption", LIFETIMES, "job", path=f"{path}.poolLifetimeOption")
    if lifetime == "jobschedule" and owner == "job":
        raise InvalidPropertyValue(
            f"{path}.poolLifetimeOption", spec["poolLifetimeOption"], "jobschedule applies to job schedules only."
        )
    spec["poolLifetimeOption"] = lifetime
    spec["keepAlive"] = optional_bool(spec, "keepAlive", False, path=f"{path}.keepAlive")
    prefix = spec.get("autoPoolIdPrefix")
    if prefix is not None and (
        not isinstance(prefix, str) or len(prefix) > MAX_PREFIX_LENGTH or not _PREFIX.match(prefix)
    ):
        raise InvalidPropertyValue(
            f"{path}.autoPoolIdPrefix", prefix, "Use at most 20 letters, digits, hyphens and underscores."
        )
    if spec.get("pool") is None:
        raise MissingRequiredProperty(f"{path}.pool")
    spec["pool"] = {**copy.deepcopy(POOL_DEFAULTS), **require_object(spec["pool"], f"{path}.pool")}
    return spec


def new_pool_id(spec: dict[str, Any]) -> str:
    """An auto pool id: ``<prefix>_<GUID>`` or the upper-case GUID."""
    guid = str(uuid.uuid4()).upper()
    prefix = spec.get("autoPoolIdPrefix")
    return f"{prefix}_{guid}" if prefix else guid


def create_auto_pool(account: Account, spec: dict[str, Any], now: float) -> Pool:
    """Create the pool of a validated auto pool specification.

    Raises:
        BatchError: the pool specification is invalid (400/501) or the pool quota is reached (409).
    """
    body = copy.deepcopy(spec["pool"])  # the pool's validation normalises its copy, not the job's spec
    body["id"] = new_pool_id(spec)
    return create_pool(account, body, now)


def release_auto_pool(account: Account, spec: dict[str, Any], pool_id: str | None, now: float) -> None:
    """The owner of an auto pool ended: delete its pool unless ``keepAlive``."""
    if pool_id is None or spec.get("keepAlive"):
        return
    pool = account.pools.get(id_key(pool_id))
    if pool is None or pool.state == "deleting":
        return
    try:
        delete_pool(account, pool_id, now)
    except PoolNotFound:  # deleted by the user meanwhile
        return
