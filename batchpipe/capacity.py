"""The management-plane pre-flight as a pure function: can the account allocate the pool this run asks for?

Azure Batch accepts a pool it cannot allocate and reports the shortfall later as a resize error (a zero core
quota is the most common first-run failure). The Batch account's quotas and the location's VM sizes, read from
Azure Resource Manager, say it before anything is created. :func:`capacity_problems` turns them into one line per
problem, each naming what to change; ``tasks/capacity.py`` fetches the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QUOTA_HELP = "request a quota increase for the Batch account (Azure portal > Batch account > Quotas)"


@dataclass(frozen=True)
class PoolDemand:
    """The pool (and job) a run needs."""

    pool_id: str
    vm_size: str
    nodes: int
    spot: bool = False
    spot_fallback: bool = True
    job_id: str | None = None  # a job that is already active needs no room under the job quota


@dataclass(frozen=True)
class VmOffer:
    """A VM size the account's location offers."""

    name: str
    family: str
    cores: int


@dataclass(frozen=True)
class PoolUsage:
    """An existing pool of the account and the nodes it holds (targets, since they will be allocated)."""

    pool_id: str
    vm_size: str
    dedicated_nodes: int
    low_priority_nodes: int


@dataclass(frozen=True)
class AccountCapacity:
    """The Batch account's quotas, as its management-plane resource reports them."""

    location: str
    dedicated_cores: int
    low_priority_cores: int
    pools: int
    active_jobs: int
    family_cores: dict[str, int] = field(default_factory=dict)
    family_enforced: bool = False


@dataclass(frozen=True)
class Usage:
    """What the account already holds."""

    pools: list[PoolUsage]
    active_jobs: list[str] = field(default_factory=list)  # ids of the account's active jobs


def _find(offers: list[VmOffer], vm_size: str) -> VmOffer | None:
    return next((offer for offer in offers if offer.name.lower() == vm_size.lower()), None)


def _cores(offers: list[VmOffer], pool: PoolUsage, dedicated: bool) -> int:
    offer = _find(offers, pool.vm_size)
    nodes = pool.dedicated_nodes if dedicated else pool.low_priority_nodes
    return nodes * (offer.cores if offer else 0)


def _dedicated_problems(
    demand: PoolDemand, offer: VmOffer, account: AccountCapacity, offers: list[VmOffer], others: list[PoolUsage]
) -> list[str]:
    need = demand.nodes * offer.cores
    what = f"{demand.nodes} dedicated x {offer.name} ({offer.cores} cores each) need {need} cores"
    problems = []
    used = sum(_cores(offers, pool, True) for pool in others)
    if used + need > account.dedicated_cores:
        problems.append(
            f"{what}, but the account's dedicated core quota is {account.dedicated_cores} with {used} in use "
            f"(AccountCoreQuotaReached): lower BATCHPIPE_NODE_COUNT, choose a smaller BATCHPIPE_VM_SIZE, "
            f"or {QUOTA_HELP}"
        )
    if account.family_enforced:
        quota = account.family_cores.get(offer.family, 0)
        same_family = [pool for pool in others if (_find(offers, pool.vm_size) or offer).family == offer.family]
        used_family = sum(_cores(offers, pool, True) for pool in same_family)
        if used_family + need > quota:
            problems.append(
                f"{what} of family {offer.family}, whose core quota is {quota} with {used_family} in use "
                f"(AccountVMSeriesCoreQuotaReached): choose a BATCHPIPE_VM_SIZE of a family with quota, "
                f"lower BATCHPIPE_NODE_COUNT, or {QUOTA_HELP} ({offer.family})"
            )
    return problems


def capacity_problems(
    demand: PoolDemand, account: AccountCapacity, offers: list[VmOffer], usage: Usage
) -> tuple[list[str], list[str]]:
    """Check a pool against the account's quotas and the location's VM sizes.

    Args:
        demand: The pool the run creates (or reuses: a pool of the same id is not counted again).
        account: The account's quotas.
        offers: The VM sizes of the account's location.
        usage: The account's existing pools and active jobs.

    Returns:
        Problems (one line each, saying what to change; the run must not start) and notes (one line each).
    """
    offer = _find(offers, demand.vm_size)
    if offer is None:
        sample = ", ".join(sorted(o.name for o in offers)[:6]) or "none"
        return [
            f"VM size {demand.vm_size} is not offered in {account.location}: set BATCHPIPE_VM_SIZE to one it offers "
            f"(e.g. {sample})"
        ], []
    problems: list[str] = []
    notes: list[str] = []
    others = [pool for pool in usage.pools if pool.pool_id.lower() != demand.pool_id.lower()]
    if len(others) == len(usage.pools) and len(others) + 1 > account.pools:
        problems.append(
            f"the account's pool quota is {account.pools} and {len(others)} pools exist (PoolQuotaReached): "
            f"delete unused pools (batchpipe pools prune), reuse one with BATCHPIPE_POOL_ID, or {QUOTA_HELP}"
        )
    active = {job.lower() for job in usage.active_jobs}
    if (demand.job_id or "").lower() not in active and len(active) + 1 > account.active_jobs:
        problems.append(
            f"the account's active job quota is {account.active_jobs} and {len(active)} jobs are active "
            f"(ActiveJobAndScheduleQuotaReached): terminate or delete finished jobs, or {QUOTA_HELP}"
        )
    if demand.spot:
        need = demand.nodes * offer.cores
        used = sum(_cores(offers, pool, False) for pool in others)
        if used + need <= account.low_priority_cores:
            return problems, notes
        shortfall = (
            f"{demand.nodes} Spot x {offer.name} need {need} low-priority cores, but the account's quota is "
            f"{account.low_priority_cores} with {used} in use (AccountLowPriorityCoreQuotaReached)"
        )
        if not demand.spot_fallback:
            problems.append(
                f"{shortfall}: set BATCHPIPE_USE_SPOT_NODES=false, set BATCHPIPE_SPOT_FALLBACK_TO_DEDICATED=true, "
                f"lower BATCHPIPE_NODE_COUNT, or {QUOTA_HELP}"
            )
            return problems, notes
        notes.append(f"{shortfall}: the pool will fall back to dedicated nodes")
    problems += _dedicated_problems(demand, offer, account, offers, others)
    return problems, notes
