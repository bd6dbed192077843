"""ARM wire JSON of the account, its pools and keys, VM SKUs and quotas (checked against Microsoft's recordings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batch_emulator.arm.models import AUTHENTICATION_MODES, LOCATION, QUOTA_PROPERTIES, VmSku, family_quotas
from batch_emulator.arm.translate import pool_properties
from batch_emulator.render import pool_wire, seg
from batch_emulator.timefmt import etag_for

if TYPE_CHECKING:
    from batch_emulator.models.pools import Pool
    from batch_emulator.service import BatchService

ACCOUNT_TYPE = "Microsoft.Batch/batchAccounts"
POOL_TYPE = "Microsoft.Batch/batchAccounts/pools"


@dataclass(frozen=True)
class AccountScope:
    """Where a request addresses the account: subscription, resource group and account name."""

    subscription: str
    resource_group: str
    account: str

    @property
    def account_id(self) -> str:
        """The account's ARM resource id."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Batch/batchAccounts/{self.account}"
        )

    def pool_id(self, pool_name: str) -> str:
        """A pool's ARM resource id."""
        return f"{self.account_id}/pools/{seg(pool_name)}"


def account_resource(service: BatchService, scope: AccountScope, endpoint_host: str) -> dict[str, Any]:
    """The ``BatchAccount`` resource.

    Args:
        service: The service (account, quotas, catalogue).
        scope: The subscription and resource group the client named.
        endpoint_host: ``host:port`` of the data plane (ARM's ``accountEndpoint`` has no scheme).

    Returns:
        The resource, quotas included.
    """
    account = service.account
    quotas = account.quotas
    properties: dict[str, Any] = {
        "accountEndpoint": endpoint_host,
        "nodeManagementEndpoint": endpoint_host,
        "provisioningState": "Succeeded",
        "poolAllocationMode": "BatchService",
        "publicNetworkAccess": "Enabled",
        "privateEndpointConnections": [],
        "encryption": {"keySource": "Microsoft.Batch"},
        "allowedAuthenticationModes": list(AUTHENTICATION_MODES),
    }
    for name, attribute in QUOTA_PROPERTIES.items():
        properties[name] = getattr(quotas, attribute)
    properties["dedicatedCoreQuotaPerVMFamily"] = [
        {"name": family, "coreQuota": cores} for family, cores in family_quotas(quotas, account.catalog)
    ]
    properties["dedicatedCoreQuotaPerVMFamilyEnforced"] = quotas.family_enforced
    resource: dict[str, Any] = {
        "id": scope.account_id,
        "name": account.name,
        "type": ACCOUNT_TYPE,
        "location": LOCATION,
        "identity": {"type": "None"},
        "properties": properties,
    }
    if account.tags:
        resource["tags"] = dict(account.tags)
    return resource


def keys_body(service: BatchService) -> dict[str, Any]:
    """``BatchAccountKeys``: the account name and both keys."""
    keys = service.verifier.keys
    return {"accountName": service.account.name, "primary": keys["primary"], "secondary": keys["secondary"]}


def pool_resource(pool: Pool, scope: AccountScope, data_plane_url: str) -> dict[str, Any]:
    """The ARM ``Pool`` resource of a data-plane pool."""
    etag = etag_for(pool.last_modified)
    return {
        "id": scope.pool_id(pool.id),
        "name": pool.id,
        "type": POOL_TYPE,
        "etag": f'W/"{etag}"',
        "properties": pool_properties(pool_wire(pool, data_plane_url), pool.deallocation_option, scope.account_id),
    }


def sku_resource(sku: VmSku) -> dict[str, Any]:
    """A ``SupportedSku`` of ``virtualMachineSkus``."""
    return {
        "name": sku.name,
        "familyName": sku.family,
        "capabilities": [
            {"name": "vCPUs", "value": str(sku.cores)},
            {"name": "vCPUsAvailable", "value": str(sku.cores)},
            {"name": "LowPriorityCapable", "value": "True"},
        ],
    }
