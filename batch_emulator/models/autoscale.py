"""Pool autoscale: enabling, disabling and evaluating formulas, the metrics a pool's formula sees, and
applying an evaluation's targets to the pool. The formula language itself is :mod:`batch_emulator.autoscale`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_emulator.autoscale.errors import FormulaError, FormulaEvaluationError
from batch_emulator.autoscale.evaluator import DEDICATED, LOW_PRIORITY, Environment, Evaluation, check, evaluate
from batch_emulator.autoscale.parser import MAX_FORMULA_LENGTH
from batch_emulator.autoscale.samples import METRIC_NAMES, SAMPLE_PERIOD_SECONDS, SampleHistory
from batch_emulator.clock import ServiceClock
from batch_emulator.errors import (
    AutoScalingFormulaSyntaxError,
    AutoScalingFormulaTooLong,
    Conflict,
    InvalidPropertyValue,
    MissingRequiredProperty,
    PoolBeingResized,
    TooManyEnableAutoScaleRequests,
)
from batch_emulator.models.validation import require_object
from batch_emulator.node.task_processes import TASK_PROCESSES
from batch_emulator.timefmt import format_duration, from_ts, iso, parse_duration

if TYPE_CHECKING:
    from batch_emulator.models.account import Account
    from batch_emulator.models.jobs import Job
    from batch_emulator.models.pools import Pool

#: The pool properties of autoscale.
SETTINGS = ("enableAutoScale", "autoScaleFormula", "autoScaleEvaluationInterval")
DEFAULT_EVALUATION_INTERVAL = "PT15M"
MIN_EVALUATION_SECONDS = 5 * 60
MAX_EVALUATION_SECONDS = 168 * 3600
#: Service seconds that must pass between two ``enableautoscale`` calls on a pool.
ENABLE_INTERVAL_SECONDS = 30.0
_USABLE_STATES = frozenset({"idle", "running"})


# --- settings ------------------------------------------------------------------------------------------------
def validate_formula(value: object, path: str = "autoScaleFormula") -> str:
    """Check a formula as the service does when it is set on a pool.

    Raises:
        BatchError: not a string (400), too long (400 AutoScalingFormulaTooLong), or does not parse
            (400 AutoScalingFormulaSyntaxError).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidPropertyValue(path, value, "The autoscale formula must be a non-empty string.")
    if len(value) > MAX_FORMULA_LENGTH:
        raise AutoScalingFormulaTooLong()
    try:
        check(value)
    except FormulaError as error:
        raise AutoScalingFormulaSyntaxError(error.message_value) from error
    return value


def validate_interval(value: object, path: str = "autoScaleEvaluationInterval") -> str:
    """Check an evaluation interval (5 minutes to 168 hours) and return it normalised (``PT06M00S`` → ``PT6M``).

    Raises:
        InvalidPropertyValue: not a duration, or out of range.
    """
    try:
        seconds = parse_duration(str(value)).total_seconds()
    except ValueError as error:
        raise InvalidPropertyValue(path, value, "The value must be an ISO-8601 duration.") from error
    if not MIN_EVALUATION_SECONDS <= seconds <= MAX_EVALUATION_SECONDS:
        raise InvalidPropertyValue(path, value, "The evaluation interval must be between 5 minutes and 168 hours.")
    return format_duration(timedelta(seconds=seconds))


def create_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """The autoscale part of a pool create body, validated (empty when autoscale is off).

    Raises:
        BatchError: a missing or invalid formula or interval, or fixed targets on an autoscale pool.
    """
    if not data.get("enableAutoScale"):
        return {"enableAutoScale": False}
    if data.get("autoScaleFormula") is None:
        raise MissingRequiredProperty("autoScaleFormula")
    for fixed in ("targetDedicatedNodes", "targetLowPriorityNodes"):
        if data.get(fixed) is not None:
            raise InvalidPropertyValue(fixed, data[fixed], "A pool with enableAutoScale takes no fixed target.")
    interval = data.get("autoScaleEvaluationInterval")
    return {
        "enableAutoScale": True,
        "autoScaleFormula": validate_formula(data["autoScaleFormula"]),
        "autoScaleEvaluationInterval": DEFAULT_EVALUATION_INTERVAL if interval is None else validate_interval(interval),
    }


def is_enabled(pool: Pool) -> bool:
    """Whether the pool scales by formula."""
    return bool(pool.spec.get("enableAutoScale"))


def interval_seconds(pool: Pool) -> float:
    """The pool's evaluation interval in service seconds."""
    interval = pool.spec.get("autoScaleEvaluationInterval", DEFAULT_EVALUATION_INTERVAL)
    return parse_duration(str(interval)).total_seconds()


def _changed(account: Account, pool: Pool, now: float) -> None:
    pool.autoscale_generation += 1  # evaluation timers of the old settings become stale
    pool.touch(now)
    account.changes.pools.add(pool)
    account.pending_autoscale.add(pool)
    account.notify()


def enable_autoscale(
    account: Account, pool: Pool, body: object, now: float, *, clock: ServiceClock | None = None
) -> Pool:
    """Apply ``POST /pools/{id}/enableautoscale``: set or change the formula and interval; the
    scheduler evaluates the formula at once and then every interval. With the service ``clock`` (the data
    plane's ``enableautoscale``), two calls on a pool must be ``ENABLE_INTERVAL_SECONDS`` service seconds apart;
    ARM's pool update passes none.

    Raises:
        BatchError: invalid body, no formula for a pool without autoscale, pool resizing (409), or the
            previous call too recent (503 ``TooManyEnableAutoScaleRequests``, with ``Retry-After``).
    """
    data = require_object(body)
    formula = data.get("autoScaleFormula")
    interval = data.get("autoScaleEvaluationInterval")
    if formula is None and (interval is None or not is_enabled(pool)):
        raise MissingRequiredProperty("autoScaleFormula")
    if pool.allocation_state != "steady":
        raise PoolBeingResized()
    if clock is not None and pool.autoscale_enabled_at is not None:
        wait = pool.autoscale_enabled_at + clock.real_seconds(ENABLE_INTERVAL_SECONDS) - now
        if wait > 0:
            after = str(math.ceil(wait)) if wait >= 1 else f"{wait:.3f}"  # fractional only when time runs faster
            raise TooManyEnableAutoScaleRequests(headers={"Retry-After": after})
    if formula is not None:
        pool.spec["autoScaleFormula"] = validate_formula(formula)
    if interval is not None:
        pool.spec["autoScaleEvaluationInterval"] = validate_interval(interval)
    pool.spec.setdefault("autoScaleEvaluationInterval", DEFAULT_EVALUATION_INTERVAL)
    pool.spec["enableAutoScale"] = True
    pool.autoscale_enabled_at = now
    _changed(account, pool, now)
    return pool


def disable_autoscale(account: Account, pool: Pool, now: float) -> Pool:
    """Apply ``POST /pools/{id}/disableautoscale``: the pool keeps its current targets."""
    pool.spec["enableAutoScale"] = False
    pool.spec.pop("autoScaleFormula", None)
    pool.spec.pop("autoScaleEvaluationInterval", None)
    pool.autoscale_run = None
    _changed(account, pool, now)
    return pool


def require_enabled(pool: Pool) -> None:
    """Evaluating a formula needs a pool with autoscale enabled, as in Batch.

    Raises:
        Conflict: autoscale is off (409 OperationInvalidForCurrentState).
    """
    if not is_enabled(pool):
        raise Conflict("Automatic scaling is not enabled on the pool; enable it before evaluating a formula.")


def validate_formula_text(body: object) -> str:
    """The formula of an ``evaluateautoscale`` body: present and a string, but free to be wrong
    (its errors are the evaluation's answer).

    Raises:
        BatchError: no formula (400 MissingRequiredProperty), not a string, or too long.
    """
    data = require_object(body)
    formula = data.get("autoScaleFormula")
    if formula is None:
        raise MissingRequiredProperty("autoScaleFormula")
    if not isinstance(formula, str):
        raise InvalidPropertyValue("autoScaleFormula", formula, "The autoscale formula must be a string.")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise AutoScalingFormulaTooLong()
    return formula


# --- metrics -------------------------------------------------------------------------------------------------
def jobs_by_pool(account: Account) -> dict[str, list[Job]]:
    """The account's jobs grouped by the key of the pool they run on."""
    from batch_emulator.models.validation import id_key

    groups: dict[str, list[Job]] = {}
    for job in account.jobs.values():
        groups.setdefault(id_key(job.pool_id), []).append(job)
    return groups


def pool_metrics(pool: Pool, jobs: Iterable[Job], now: float, period: float) -> dict[str, float]:
    """Current values of the sampled service variables of a pool.

    Task counts come from the jobs on the pool; node counts from its nodes; ``$CPUPercent`` is the share
    of busy task slots on usable nodes; ``$WallClockSeconds`` the task run time of the last ``period``
    real seconds. Memory, disk and I/O are added by :func:`resource_metrics`; network is not measured (0).
    """
    counts = {"active": 0, "running": 0, "succeeded": 0, "failed": 0}
    for job in jobs:
        for name in counts:
            counts[name] += job.task_counts[name]
    usable = slots_used = preempted = 0
    wall = 0.0
    for node in pool.nodes.values():
        if node.state in _USABLE_STATES:
            usable += 1
            slots_used += node.slots_used
        elif node.state == "preempted":
            preempted += 1
        for task in node.tasks:
            if task.start_time is not None:
                wall += min(period, max(0.0, now - task.start_time))
    slots = usable * pool.slots_per_node
    return {
        "$CPUPercent": 100.0 * slots_used / slots if slots else 0.0,
        "$WallClockSeconds": wall,
        "$SampleNodeCount": float(len(pool.nodes)),
        "$ActiveTasks": float(counts["active"]),
        "$RunningTasks": float(counts["running"]),
        "$PendingTasks": float(counts["active"] + counts["running"]),
        "$SucceededTasks": float(counts["succeeded"]),
        "$FailedTasks": float(counts["failed"]),
        "$TaskSlotsPerNode": float(pool.slots_per_node),
        "$CurrentDedicatedNodes": float(pool.current_nodes(True)),
        "$CurrentLowPriorityNodes": float(pool.current_nodes(False)),
        "$UsableNodeCount": float(usable),
        "$PreemptedNodeCount": float(preempted),
    }


def node_roots(account: Account, pool: Pool) -> list[Path]:
    """The root directories of the pool's nodes (where their task processes are registered)."""
    return [account.node_root(pool.id, node.id) for node in pool.nodes.values()]


def resource_metrics(roots: Iterable[Path], *, commit: bool) -> dict[str, float]:
    """``$MemoryBytes``, ``$DiskBytes`` and disk I/O of the nodes, measured on their running task processes.

    As Batch defines them: ``$MemoryBytes`` the average megabytes used per node (resident memory of its task
    processes), ``$DiskBytes`` the average gigabytes used on its local disk (its node directory);
    ``$DiskReadBytes``, ``$DiskWriteBytes``, ``$DiskReadOps`` and ``$DiskWriteOps`` the bytes and operations
    of the task processes since the last sample, summed over the nodes.

    Args:
        roots: The nodes' root directories.
        commit: A sample (the next one counts I/O from here) rather than a look between samples.
    """
    usages = list(TASK_PROCESSES.measure(roots, commit=commit).values())
    if not usages:
        return {}
    return {
        "$MemoryBytes": sum(u.memory_bytes for u in usages) / len(usages) / 2**20,
        "$DiskBytes": sum(u.disk_bytes for u in usages) / len(usages) / 2**30,
        "$DiskReadBytes": float(sum(u.io.read_bytes for u in usages)),
        "$DiskWriteBytes": float(sum(u.io.write_bytes for u in usages)),
        "$DiskReadOps": float(sum(u.io.read_ops for u in usages)),
        "$DiskWriteOps": float(sum(u.io.write_ops for u in usages)),
    }


def history_of(pool: Pool) -> SampleHistory:
    """The pool's sample history (created on first use)."""
    if pool.samples is None:
        pool.samples = SampleHistory(METRIC_NAMES)
    return pool.samples


def record_sample(
    pool: Pool, jobs: Iterable[Job], now: float, clock: ServiceClock, roots: Iterable[Path] = ()
) -> dict[str, float]:
    """Record one sample of the pool's metrics (``roots``: its nodes' directories); returns the values recorded."""
    values = pool_metrics(pool, jobs, now, clock.real_seconds(SAMPLE_PERIOD_SECONDS))
    values.update(resource_metrics(roots, commit=True))
    history_of(pool).record(now, values)
    return values


# --- evaluation ----------------------------------------------------------------------------------------------
def run_formula(account: Account, pool: Pool, formula: str, now: float, clock: ServiceClock) -> dict[str, Any]:
    """Evaluate ``formula`` for the pool without changing it; returns the ``AutoScaleRun`` wire body
    (with ``results``, or with ``error`` in the service's codes)."""
    jobs = jobs_by_pool(account).get(pool.key, [])
    history = history_of(pool)
    roots = node_roots(account, pool)
    if len(history):
        current = pool_metrics(pool, jobs, now, 0.0) | resource_metrics(roots, commit=False)
    else:
        current = record_sample(pool, jobs, now, clock, roots)
    environment = Environment(
        target_dedicated=float(pool.target_dedicated),
        target_low_priority=float(pool.target_low_priority),
        metrics=current,
        history=history,
        now=from_ts(now),
        time_scale=clock.time_scale,
    )
    run: dict[str, Any] = {"timestamp": iso(now)}
    try:
        outcome = evaluate(formula, environment)
    except FormulaError as error:
        if isinstance(error, FormulaEvaluationError):  # the service variables as they were (recorded by Batch)
            unchanged: dict[str, object] = {
                DEDICATED: environment.target_dedicated,
                LOW_PRIORITY: environment.target_low_priority,
            }
            run["results"] = Evaluation(unchanged, 0, 0, pool.deallocation_option).results
        run["error"] = {
            "code": error.code,
            "message": error.summary,
            "values": [{"name": "Message", "value": error.message_value}],
        }
        return run
    run["results"] = outcome.results
    run["_outcome"] = outcome
    return run


def autoscale_pool(account: Account, pool: Pool, now: float, clock: ServiceClock) -> None:
    """One scheduled evaluation: record its run on the pool and resize the pool to the result."""
    from batch_emulator.models.pools import apply_targets

    run = run_formula(account, pool, str(pool.spec.get("autoScaleFormula", "")), now, clock)
    outcome: Evaluation | None = run.pop("_outcome", None)
    pool.autoscale_run = run
    pool.touch(now)
    account.changes.pools.add(pool)
    if outcome is not None:
        apply_targets(
            account, pool, outcome.target_dedicated, outcome.target_low_priority, outcome.deallocation_option, now
        )


def evaluation_wire(run: dict[str, Any]) -> dict[str, Any]:
    """An ``AutoScaleRun`` as the wire shows it (without the evaluator's private outcome)."""
    return {name: value for name, value in run.items() if not name.startswith("_")}
