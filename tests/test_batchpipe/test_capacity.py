"""The management-plane pre-flight as a pure function: one line per reason the pool cannot be allocated."""

from __future__ import annotations

import pytest

from batchpipe.capacity import AccountCapacity, PoolDemand, PoolUsage, Usage, VmOffer, capacity_problems

OFFERS = [
    VmOffer("Standard_D2s_v3", "standardDSv3Family", 2),
    VmOffer("Standard_D4s_v3", "standardDSv3Family", 4),
    VmOffer("Standard_F2s_v2", "standardFSv2Family", 2),
]
ROOMY = AccountCapacity(location="westeurope", dedicated_cores=100, low_priority_cores=100, pools=10, active_jobs=10)


def demand(**changes: object) -> PoolDemand:
    values: dict[str, object] = {"pool_id": "batchpipe-pool", "vm_size": "standard_d2s_v3", "nodes": 3}
    values.update(changes)
    return PoolDemand(**values)  # type: ignore[arg-type]


def account(**changes: object) -> AccountCapacity:
    values = ROOMY.__dict__ | changes
    return AccountCapacity(**values)


def test_a_pool_within_every_quota_passes() -> None:
    assert capacity_problems(demand(), ROOMY, OFFERS, Usage([])) == ([], [])


def test_a_vm_size_the_location_does_not_offer_names_what_it_offers() -> None:
    [problem], _ = capacity_problems(demand(vm_size="Standard_NC6"), ROOMY, OFFERS, Usage([]))

    assert problem.startswith("VM size Standard_NC6 is not offered in westeurope: set BATCHPIPE_VM_SIZE")
    assert "Standard_D2s_v3" in problem


def test_the_dedicated_core_quota_counts_the_other_pools_nodes() -> None:
    other = PoolUsage("other", "Standard_D4s_v3", dedicated_nodes=2, low_priority_nodes=0)

    [problem], _ = capacity_problems(demand(), account(dedicated_cores=10), OFFERS, Usage([other]))

    assert "need 6 cores" in problem
    assert "dedicated core quota is 10 with 8 in use (AccountCoreQuotaReached)" in problem
    assert "BATCHPIPE_NODE_COUNT" in problem


def test_the_runs_own_pool_is_neither_counted_nor_a_new_pool() -> None:
    own = PoolUsage("batchpipe-pool", "Standard_D2s_v3", dedicated_nodes=3, low_priority_nodes=0)

    assert capacity_problems(demand(), account(dedicated_cores=6, pools=1), OFFERS, Usage([own])) == ([], [])


def test_an_enforced_family_quota_refuses_and_names_the_family() -> None:
    enforced = account(family_enforced=True, family_cores={"standardDSv3Family": 0, "standardFSv2Family": 50})

    [problem], _ = capacity_problems(demand(), enforced, OFFERS, Usage([]))
    fine, _ = capacity_problems(demand(vm_size="Standard_F2s_v2"), enforced, OFFERS, Usage([]))

    assert "family standardDSv3Family, whose core quota is 0" in problem
    assert "(AccountVMSeriesCoreQuotaReached)" in problem
    assert fine == []


def test_a_family_quota_that_is_not_enforced_is_not_checked() -> None:
    relaxed = account(family_enforced=False, family_cores={"standardDSv3Family": 0})

    assert capacity_problems(demand(), relaxed, OFFERS, Usage([])) == ([], [])


def test_spot_without_low_priority_quota_refuses_unless_falling_back_to_dedicated() -> None:
    no_spot = account(low_priority_cores=0)

    [problem], _ = capacity_problems(demand(spot=True, spot_fallback=False), no_spot, OFFERS, Usage([]))
    problems, [note] = capacity_problems(demand(spot=True, spot_fallback=True), no_spot, OFFERS, Usage([]))

    assert "low-priority cores" in problem
    assert "BATCHPIPE_USE_SPOT_NODES=false" in problem
    assert problems == []
    assert note.endswith("the pool will fall back to dedicated nodes")


def test_spot_falling_back_still_needs_dedicated_quota() -> None:
    nothing = account(low_priority_cores=0, dedicated_cores=0)

    problems, _ = capacity_problems(demand(spot=True), nothing, OFFERS, Usage([]))

    assert len(problems) == 1
    assert "(AccountCoreQuotaReached)" in problems[0]


@pytest.mark.parametrize(
    ("usage", "refused"),
    [(Usage([PoolUsage("a", "Standard_D2s_v3", 0, 0)]), True), (Usage([]), False)],
)
def test_the_pool_quota_counts_existing_pools(usage: Usage, refused: bool) -> None:
    problems, _ = capacity_problems(demand(), account(pools=1), OFFERS, usage)

    assert bool(problems) == refused
    if refused:
        assert "pool quota is 1 and 1 pools exist (PoolQuotaReached)" in problems[0]
        assert "batchpipe pools prune" in problems[0]


def test_the_job_quota_counts_active_jobs_but_not_the_runs_own() -> None:
    full = account(active_jobs=1)

    [problem], _ = capacity_problems(demand(job_id="job-new"), full, OFFERS, Usage([], ["job-old"]))
    rerun, _ = capacity_problems(demand(job_id="job-old"), full, OFFERS, Usage([], ["job-old"]))

    assert "active job quota is 1 and 1 jobs are active (ActiveJobAndScheduleQuotaReached)" in problem
    assert rerun == []


def test_every_problem_is_reported_at_once() -> None:
    tight = account(pools=0, active_jobs=0, dedicated_cores=0)

    problems, _ = capacity_problems(demand(), tight, OFFERS, Usage([]))

    codes = ["(PoolQuotaReached)", "(ActiveJobAndScheduleQuotaReached)", "(AccountCoreQuotaReached)"]
    assert len(problems) == len(codes)
    assert all(code in problem for code, problem in zip(codes, problems, strict=True))
    assert all("\n" not in problem for problem in problems)
