"""State and rules of the management plane: the one account, its keys and quotas, VM SKUs, name checks.

The account lives in every subscription and resource group a client names (the local service has no
subscriptions); its name must match. Quotas are the data plane's :class:`~batch_emulator.models.account.Quotas`,
so both planes enforce the same numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batch_emulator.arm.errors import ResourceNotFound
from batch_emulator.arm.translate import pool_update
from batch_emulator.errors import InvalidPropertyValue, MissingRequiredProperty
from batch_emulator.models import autoscale
from batch_emulator.models import pools as pool_model
from batch_emulator.models.validation import require_object
from batch_emulator.render import pool_wire
from batch_emulator.vmfamily import sku_name, vm_family

if TYPE_CHECKING:
    from batch_emulator.catalog import Catalog
    from batch_emulator.models.account import Account, Quotas
    from batch_emulator.models.pools import Pool
    from batch_emulator.service import BatchService

#: The Azure region the local account reports (any location is answered with the same catalogue).
LOCATION = "local"
#: The resource group a subscription-wide listing names (the account is in every resource group a client names).
DEFAULT_RESOURCE_GROUP = "local"
#: Batch accounts a subscription may hold per region (``locations/{location}/quotas``); the service serves one.
ACCOUNT_QUOTA = 1
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]+$")
_KEY_NAMES = {"primary": "primary", "secondary": "secondary"}
#: ARM quota property -> :class:`Quotas` attribute (integers).
QUOTA_PROPERTIES = {
    "dedicatedCoreQuota": "dedicated_cores",
    "lowPriorityCoreQuota": "low_priority_cores",
    "poolQuota": "pools",
    "activeJobAndJobScheduleQuota": "active_jobs",
}


@dataclass(frozen=True)
class VmSku:
    """One VM size the location offers."""

    name: str  # Azure's spelling, e.g. Standard_D2s_v3
    family: str  # e.g. standardDSv3Family
    cores: int


def find_account(service: BatchService, name: str, resource_group: str) -> str:
    """The account's name, when ``name`` names it (case-insensitively, as ARM compares names).

    Raises:
        ResourceNotFound: another name.
    """
    if name.lower() != service.account.name.lower():
        raise ResourceNotFound(
            f"The Resource 'Microsoft.Batch/batchAccounts/{name}' under resource group '{resource_group}' "
            f"was not found (the local Batch service serves the account '{service.account.name}')."
        )
    return service.account.name


def regenerate_key(service: BatchService, body: object) -> None:
    """Regenerate the key named by ``{"keyName": "Primary"|"Secondary"}``; the data plane takes the new key at once.

    Raises:
        BatchError: a missing or unknown key name.
    """
    data = require_object(body)
    key_name = data.get("keyName")
    if key_name is None:
        raise MissingRequiredProperty("keyName")
    which = _KEY_NAMES.get(str(key_name).lower())
    if which is None:
        raise InvalidPropertyValue("keyName", key_name, "Use Primary or Secondary.")
    service.verifier.regenerate(which)


def update_pool(account: Account, pool: Pool, resource: object, now: float) -> Pool:
    """Apply an ARM ``PATCH`` (or a ``PUT`` of an existing pool) through the data plane's pool and autoscale rules.

    Scale settings go first, so that a refusal there (``PoolBeingResized`` for autoscale on a resizing pool)
    leaves the pool as it was: ``autoScale`` enables autoscale or changes its formula (the settings the pool
    already has change nothing); ``fixedScale`` on an autoscale pool disables autoscale, then resizes. Then the
    updatable properties change.

    Raises:
        BatchError: a fixed property with a new value, invalid scale settings or properties, a pool being deleted.
    """
    scale, update = pool_update(resource, {**pool_wire(pool, ""), **pool.spec})
    if scale is not None and scale.get("enableAutoScale"):
        if not _same_autoscale(pool, scale):
            autoscale.enable_autoscale(account, pool, scale, now)
    elif scale is not None:
        if autoscale.is_enabled(pool):
            autoscale.disable_autoscale(account, pool, now)
        pool_model.resize_pool(account, pool.id, scale, now)
    if update:
        pool_model.update_pool_properties(account, pool.id, update, now, replace=False)
    return pool


def _same_autoscale(pool: Pool, scale: dict[str, Any]) -> bool:
    """Whether autoscale settings are those the pool has (a re-applied template then changes nothing)."""
    settings = ("autoScaleFormula", "autoScaleEvaluationInterval")
    unchanged = all(scale.get(name) in (None, pool.spec.get(name)) for name in settings)
    return autoscale.is_enabled(pool) and unchanged


def vm_skus(catalog: Catalog) -> list[VmSku]:
    """The VM sizes of the catalogue, in Azure's spelling, sorted by name."""
    return sorted(
        (VmSku(sku_name(size), vm_family(size), cores) for size, cores in catalog.vm_cores.items()),
        key=lambda sku: sku.name.lower(),
    )


def family_quotas(quotas: Quotas, catalog: Catalog) -> list[tuple[str, int]]:
    """``dedicatedCoreQuotaPerVMFamily``: every family of the catalogue and every family given a quota."""
    families = {sku.family for sku in vm_skus(catalog)} | set(quotas.family_cores)
    return [(family, quotas.family_quota(family)) for family in sorted(families, key=str.lower)]


def set_quotas(quotas: Quotas, body: object) -> None:
    """Change quotas from a body with the account's ARM quota properties (the ``/_emulator/quotas`` admin route).

    Args:
        quotas: The account's quotas (changed in place; the caller holds the account lock).
        body: Any of ``dedicatedCoreQuota``, ``lowPriorityCoreQuota``, ``poolQuota``,
            ``activeJobAndJobScheduleQuota`` (integers), ``dedicatedCoreQuotaPerVMFamily``
            (``[{"name", "coreQuota"}]``) and ``dedicatedCoreQuotaPerVMFamilyEnforced`` (boolean).

    Raises:
        BatchError: an unknown property or a value of the wrong type.
    """
    data = require_object(body)
    for name, value in data.items():
        if name in QUOTA_PROPERTIES:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidPropertyValue(name, value, "Use a whole number of at least 0.")
            setattr(quotas, QUOTA_PROPERTIES[name], value)
        elif name == "dedicatedCoreQuotaPerVMFamilyEnforced":
            if not isinstance(value, bool):
                raise InvalidPropertyValue(name, value, "Use true or false.")
            quotas.family_enforced = value
        elif name == "dedicatedCoreQuotaPerVMFamily":
            quotas.family_cores = dict(quotas.family_cores)
            for item in value if isinstance(value, list) else [None]:
                entry = require_object(item, name)
                family, cores = entry.get("name"), entry.get("coreQuota")
                if not isinstance(family, str) or not isinstance(cores, int) or isinstance(cores, bool) or cores < 0:
                    raise InvalidPropertyValue(name, item, 'Use [{"name": "<family>", "coreQuota": <cores>}].')
                quotas.family_cores[family] = cores
        else:
            raise InvalidPropertyValue(name, value, "Not a quota property of a Batch account.")


def check_name_availability(service: BatchService, body: object) -> dict[str, Any]:
    """Answer ``checkNameAvailability`` for a Batch account name.

    Raises:
        BatchError: no ``name``, or a ``type`` other than ``Microsoft.Batch/batchAccounts``.
    """
    data = require_object(body)
    name = data.get("name")
    if not isinstance(name, str):
        raise MissingRequiredProperty("name")
    kind = str(data.get("type", "Microsoft.Batch/batchAccounts"))
    if kind.lower() != "microsoft.batch/batchaccounts":
        raise InvalidPropertyValue("type", kind, "Use Microsoft.Batch/batchAccounts.")
    if not 3 <= len(name) <= 24:
        message = "Account name must be at least 3 characters and at most 24 characters."
        return {"nameAvailable": False, "reason": "Invalid", "message": message}
    if not _ACCOUNT_NAME.match(name):
        message = "Account name must contain only numbers and lower-case letters."
        return {"nameAvailable": False, "reason": "Invalid", "message": message}
    if name == service.account.name.lower():
        return {"nameAvailable": False, "reason": "AlreadyExists", "message": f"An account named '{name}' exists."}
    return {"nameAvailable": True}
