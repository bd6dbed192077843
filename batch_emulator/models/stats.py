"""Statistics of tasks, jobs, job schedules and pools, and pool usage metrics, from what the service measured:
each task run's CPU time and block I/O (``wait4``), its wall time, the bytes of its resource files, and how
long each node was in its pool."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batch_emulator.usage import NO_USAGE, NodeLifetime, Usage

if TYPE_CHECKING:
    from batch_emulator.models.account import Account
    from batch_emulator.models.jobs import Job
    from batch_emulator.models.pools import Pool
    from batch_emulator.models.tasks import Task

#: Pool usage metrics are aggregated over intervals of this many seconds.
USAGE_INTERVAL_SECONDS = 30 * 60


@dataclass(frozen=True)
class JobTotals:
    """What the tasks of one or more jobs used, and how they ended."""

    usage: Usage
    succeeded: int
    failed: int
    retries: int
    wait_seconds: float


def task_wait_seconds(task: Task) -> float:
    """Seconds from the task's creation to the start of its latest run (0 before it started)."""
    return max(0.0, task.start_time - task.creation_time) if task.start_time is not None else 0.0


def job_totals(jobs: Iterable[Job]) -> JobTotals:
    """Sum the usage of every task of ``jobs``; succeeded and failed count completed tasks."""
    usage = NO_USAGE
    succeeded = failed = retries = 0
    wait = 0.0
    for job in jobs:
        succeeded += job.task_counts["succeeded"]
        failed += job.task_counts["failed"]
        for task in job.tasks.values():
            if task.usage is not NO_USAGE:
                usage = usage + task.usage
            retries += task.retry_count
            wait += task_wait_seconds(task)
    return JobTotals(usage, succeeded, failed, retries, wait)


def lifetime_of(pool: Pool, node_id: str, dedicated: bool, start: float, end: float | None) -> NodeLifetime:
    """A node's lifetime record."""
    return NodeLifetime(pool.id, str(pool.spec["vmSize"]), pool.cores_per_node, dedicated, start, end)


def node_lifetimes(account: Account) -> list[NodeLifetime]:
    """Every node's time in its pool: the nodes that left (kept by the account) and the nodes there now."""
    live = [
        lifetime_of(pool, node.id, node.is_dedicated, node.allocation_time, None)
        for pool in account.pools.values()
        for node in pool.nodes.values()
    ]
    return [*account.node_lifetimes, *live]


def dedicated_core_seconds(account: Account, pool: Pool, now: float) -> float:
    """Core seconds of the pool's dedicated nodes since the pool was created."""
    return sum(
        lifetime.core_seconds(pool.creation_time, now)
        for lifetime in node_lifetimes(account)
        if lifetime.dedicated and lifetime.pool_id == pool.id and lifetime.start >= pool.creation_time
    )


def pool_usage(account: Account, pool: Pool) -> Usage:
    """What the tasks that ran on the pool used (tasks of any job, while they exist)."""
    usage = NO_USAGE
    for job in account.jobs.values():
        for task in job.tasks.values():
            if task.pool_id == pool.id and task.usage is not NO_USAGE:
                usage = usage + task.usage
    return usage


@dataclass(frozen=True)
class PoolMeasures:
    """What a pool's ``stats`` report."""

    core_seconds: float  # of its dedicated nodes
    usage: Usage  # of the tasks that ran on it
    average_cpu: float  # mean of its ``$CPUPercent`` samples


def pool_measures(account: Account, pool: Pool, now: float) -> PoolMeasures:
    """Measure a pool for its ``stats``."""
    samples = pool.samples
    cpu = samples.latest("$CPUPercent", samples.count()) if samples is not None else []
    average = sum(cpu) / len(cpu) if cpu else 0.0
    return PoolMeasures(dedicated_core_seconds(account, pool, now), pool_usage(account, pool), average)


def usage_metrics(account: Account, start: float, end: float) -> list[dict[str, object]]:
    """Core hours per pool and aggregation interval between ``start`` and ``end`` (the interval running now
    counts the core hours so far).

    Returns:
        Records with ``poolId``, ``start``, ``end``, ``vmSize`` and ``totalCoreHours``, oldest first.
    """
    first = start - start % USAGE_INTERVAL_SECONDS
    lifetimes = node_lifetimes(account)
    records: list[dict[str, object]] = []
    interval = first
    while interval < end:
        closing = interval + USAGE_INTERVAL_SECONDS
        totals: dict[tuple[str, str], float] = {}
        for lifetime in lifetimes:
            seconds = lifetime.core_seconds(interval, min(closing, end))
            if seconds > 0 or (lifetime.start < closing and (lifetime.end is None or lifetime.end > interval)):
                key = (lifetime.pool_id, lifetime.vm_size)
                totals[key] = totals.get(key, 0.0) + seconds
        for (pool_id, vm_size), seconds in sorted(totals.items()):
            records.append(
                {"poolId": pool_id, "start": interval, "end": closing, "vmSize": vm_size, "hours": seconds / 3600}
            )
        interval = closing
    return records
