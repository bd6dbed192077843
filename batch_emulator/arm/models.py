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
from batch_emulator.errors import InvalidPropertyValue, MissingRequiredProperty, OperationNotImplemented
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
#: ``allowedAuthenticationModes``: the local account allows them all.
AUTHENTICATION_MODES = ("SharedKey", "AAD", "TaskAuthenticationToken")
#: Tags a resource may have.
MAX_TAGS = 50
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


def update_account(account: Account, body: object) -> None:
    """Apply an ARM ``PATCH`` of the account (``BatchAccountUpdateParameters``): all or nothing.

    ``tags`` replace the account's tags. The other properties may be given with the values the local account
    has (``identity`` ``None``, ``publicNetworkAccess`` ``Enabled``, every authentication mode, Batch-managed
    encryption, no auto-storage or network profile); another value is refused, and so is everything else.

    Raises:
        BatchError: a property that cannot be changed here or an invalid value; nothing has changed then.
    """
    data = require_object(body)
    tags = _checked_tags(data["tags"]) if data.get("tags") is not None else None
    identity = data.get("identity")
    if identity is not None and str(require_object(identity, "identity").get("type", "None")).lower() != "none":
        raise OperationNotImplemented("managed identities of the Batch account")
    properties = require_object(data.get("properties") or {}, "properties")
    for name, value in properties.items():
        if value is not None:
            _check_unchanged(name, value)
    if tags is not None:
        account.tags = tags


def _checked_tags(value: object) -> dict[str, str]:
    tags = require_object(value, "tags")
    if len(tags) > MAX_TAGS:
        raise InvalidPropertyValue("tags", f"{len(tags)} tags", f"Give at most {MAX_TAGS} tags.")
    for name, tag in tags.items():
        if not name or len(name) > 512 or not isinstance(tag, str) or len(tag) > 256:
            raise InvalidPropertyValue(f"tags.{name}", tag, "Tag names have 1-512 characters, values 0-256.")
    return dict(tags)


def _check_unchanged(name: str, value: object) -> None:
    """Refuse a value of an updatable account property that the local account does not have."""
    path = f"properties.{name}"
    if name == "publicNetworkAccess":
        access = str(value)
        if access.lower() not in ("enabled", "disabled", "securedbyperimeter"):
            raise InvalidPropertyValue(path, access, "Use Enabled, Disabled or SecuredByPerimeter.")
        if access.lower() != "enabled":
            raise OperationNotImplemented(f"{path} {access} (the local service is reachable on loopback only)")
    elif name == "allowedAuthenticationModes":
        modes = value if isinstance(value, list) else [value]
        known = {mode.lower(): mode for mode in AUTHENTICATION_MODES}
        if unknown := [mode for mode in modes if str(mode).lower() not in known]:
            raise InvalidPropertyValue(path, str(unknown[0]), f"Use any of {', '.join(AUTHENTICATION_MODES)}.")
        if {str(mode).lower() for mode in modes} != set(known):
            raise OperationNotImplemented(f"{path} other than all of {', '.join(AUTHENTICATION_MODES)}")
    elif name == "encryption":
        key_source = str(require_object(value, path).get("keySource", "Microsoft.Batch"))
        if key_source.lower() != "microsoft.batch":
            raise OperationNotImplemented(f"{path}.keySource {key_source}")
    elif name in ("autoStorage", "networkProfile"):
        raise OperationNotImplemented(f"{path} of the Batch account")
    else:
        raise InvalidPropertyValue(path, "…", "Not an updatable property of a Batch account.")


def update_pool(account: Account, pool: Pool, resource: object, now: float) -> Pool:
    """Apply an ARM ``PATCH`` (or a ``PUT`` of an existing pool) through the data plane's pool and autoscale rules.

    All or nothing: every property is checked first; then the scale settings change, so that a refusal there
    (``PoolBeingResized`` for autoscale on a resizing pool) leaves the pool as it was: ``autoScale`` enables
    autoscale or changes its formula (the settings the pool already has change nothing); ``fixedScale`` on an
    autoscale pool disables autoscale, then resizes. Then the updatable properties change.

    Raises:
        BatchError: a fixed property with a new value, invalid scale settings or properties, a pool being deleted.
    """
    scale, update = pool_update(resource, {**pool_wire(pool, ""), **pool.spec})
    changes = pool_model.pool_property_changes(pool, update, replace=False)
    if scale is not None and scale.get("enableAutoScale"):
        if not _same_autoscale(pool, scale):
            autoscale.enable_autoscale(account, pool, scale, now)
    elif scale is not None:
        if autoscale.is_enabled(pool):
            autoscale.disable_autoscale(account, pool, now)
        pool_model.resize_pool(account, pool.id, scale, now)
    if changes:
        pool_model.apply_pool_properties(account, pool, changes, now)
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
