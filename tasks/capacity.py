"""Pre-flight on the Batch management plane: the account's quotas and VM sizes allow the pool, or nothing starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from azure.mgmt.batch.models import BatchAccountProperties, SkuCapability
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batchpipe.capacity import AccountCapacity, PoolDemand, PoolUsage, Usage, VmOffer, capacity_problems
from batchpipe.clients import ManagementTarget, batch_client, management_client, management_target
from batchpipe.errors import ConfigurationError
from batchpipe.settings import Settings
from tasks._common import AZURE_RETRIES, FIRST_CONTACT, azure_call

#: What the pre-flight says when it cannot reach the management plane.
NOT_CHECKED = (
    "quotas and VM size availability not checked: set BATCHPIPE_ARM_SUBSCRIPTION_ID and "
    "BATCHPIPE_ARM_RESOURCE_GROUP (see docs/azure.md)"
)


@dataclass(frozen=True)
class CapacityReport:
    """The outcome of the management-plane pre-flight."""

    checked: bool
    summary: str
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line (rich markup) for ``batchpipe plan --check``."""
        if not self.checked:
            return f"[yellow]{self.summary}[/]"
        return "; ".join([self.summary, *self.notes]) + " [green]ok[/]"


def _capacity(target: ManagementTarget, settings: Settings) -> tuple[AccountCapacity, list[VmOffer], Usage]:
    """Read the account, its location's VM sizes, its pools (management plane) and active jobs (data plane)."""
    options = {**target.call_options, **FIRST_CONTACT}
    with management_client(settings, target) as client:
        account = client.batch_account.get(target.resource_group, target.account_name, **options)
        props = account.properties or BatchAccountProperties()
        location = str(account.location)
        offers = [
            VmOffer(str(sku.name), str(sku.family_name), _vcpus(sku.capabilities or []))
            for sku in client.location.list_supported_virtual_machine_skus(location, **target.call_options)
        ]
        pools = [
            PoolUsage(
                str(pool.name),
                str(pool.properties.vm_size if pool.properties else ""),
                *_targets(pool),
            )
            for pool in client.pool.list_by_batch_account(
                target.resource_group, target.account_name, **target.call_options
            )
        ]
    families = {str(item.name): int(item.core_quota or 0) for item in props.dedicated_core_quota_per_vm_family or []}
    capacity = AccountCapacity(
        location=location,
        dedicated_cores=int(props.dedicated_core_quota or 0),
        low_priority_cores=int(props.low_priority_core_quota or 0),
        pools=int(props.pool_quota or 0),
        active_jobs=int(props.active_job_and_job_schedule_quota or 0),
        family_cores=families,
        family_enforced=bool(props.dedicated_core_quota_per_vm_family_enforced),
    )
    with batch_client(settings) as batch:
        active = [str(job.id) for job in batch.list_jobs(filter="state eq 'active'", select=["id"])]
    return capacity, offers, Usage(pools, active)


def _vcpus(capabilities: list[SkuCapability]) -> int:
    values = {c.name: c.value for c in capabilities}
    text = str(values.get("vCPUs") or "0")
    return int(text) if text.isdigit() else 0


def _targets(pool: object) -> tuple[int, int]:
    """Nodes a pool holds or is about to hold (fixed-scale targets; current nodes for autoscale pools)."""
    props = getattr(pool, "properties", None)
    fixed = getattr(getattr(props, "scale_settings", None), "fixed_scale", None)
    if fixed is not None:
        return int(fixed.target_dedicated_nodes or 0), int(fixed.target_low_priority_nodes or 0)
    return int(getattr(props, "current_dedicated_nodes", 0) or 0), int(
        getattr(props, "current_low_priority_nodes", 0) or 0
    )


@task(name="check-capacity", cache_policy=NO_CACHE, **AZURE_RETRIES)
def check_capacity(settings: Settings, job_id: str | None = None) -> CapacityReport:
    """Read the Batch account's quotas and VM sizes and refuse a pool that cannot be allocated.

    Args:
        settings: the run's settings (pool size, VM size, Spot, and where the account is).
        job_id: the run's job (an active job of this id needs no room under the job quota).

    Returns:
        What was checked (or, without management-plane settings, what could not be).

    Raises:
        ConfigurationError: the pool cannot be allocated; one clause per problem (``; ``), each saying what to change.
        CloudError: the management plane refused, or cannot be reached.
    """
    logger = get_run_logger()
    target = management_target(settings)
    if target is None:
        logger.warning("Pre-flight: %s", NOT_CHECKED)
        return CapacityReport(checked=False, summary=NOT_CHECKED)
    with azure_call("Batch management", "reading the Batch account's quotas", first_contact=True):
        account, offers, usage = _capacity(target, settings)
    demand = PoolDemand(
        pool_id=settings.pool_id,
        vm_size=settings.vm_size,
        nodes=settings.node_count,
        spot=settings.use_spot_nodes,
        spot_fallback=settings.spot_fallback_to_dedicated,
        job_id=job_id,
    )
    problems, notes = capacity_problems(demand, account, offers, usage)
    if problems:
        raise ConfigurationError("pre-flight: " + "; ".join(problems))
    for note in notes:
        logger.warning("Pre-flight: %s", note)
    summary = (
        f"quotas allow {settings.node_count} x {settings.vm_size} in {account.location} (account {target.account_name})"
    )
    logger.info("Pre-flight: %s", summary)
    return CapacityReport(checked=True, summary=summary, notes=notes)
