"""Fault injection: throttling, server errors, task and start-task failures, preemption, slow allocation, quotas.

Spec grammar (comma-separated ``key=value`` items; ``task_fail`` may repeat)::

    throttle=RATE            answer this fraction of API requests 429 TooManyRequests (with Retry-After)
    busy=RATE                answer this fraction 503 ServerBusy (with Retry-After)
    server_error=RATE        answer this fraction 500 InternalError
    retry_after=SECONDS      the Retry-After value (default 1)
    task_fail=GLOB:EXIT      tasks whose id matches GLOB exit with EXIT instead of running
    starttask_fail=GLOB      start tasks of pools whose id matches GLOB fail (exit code 1)
    preempt=GLOB             the node running a matching task is preempted (once per task)
    slow_allocation=TIME     extra time each node takes to allocate (``2s``, ``500ms``, ``1.5``)
    quota.pools=N            pool quota
    quota.cores=N            dedicated core quota
    quota.low_priority_cores=N
    quota.active_jobs=N      active job and job schedule quota
    seed=N                   seed of the random draws (same requests in the same order -> same faults)

Globs use ``fnmatch`` syntax and compare case-insensitively (Batch ids are case-insensitive).
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from batch_emulator.errors import BatchError, InternalError, ServerBusy, TooManyRequests
from batch_emulator.models.account import Quotas

_RATE_KEYS = ("throttle", "busy", "server_error")
_QUOTA_KEYS = {
    "quota.pools": "pools",
    "quota.cores": "dedicated_cores",
    "quota.low_priority_cores": "low_priority_cores",
    "quota.active_jobs": "active_jobs",
}


class FaultSpecError(ValueError):
    """A fault spec that does not parse."""


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match:
        raise FaultSpecError(f"not a duration: {text!r} (use 2s, 500ms or 1.5)")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


@dataclass
class FaultSpec:
    """A parsed fault spec."""

    rates: dict[str, float] = field(default_factory=dict)
    retry_after: int = 1
    task_fail: list[tuple[str, int]] = field(default_factory=list)
    starttask_fail: list[str] = field(default_factory=list)
    preempt: list[str] = field(default_factory=list)
    slow_allocation: float = 0.0
    quotas: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """Parse a spec (None or empty: no faults).

        Raises:
            FaultSpecError: unknown key or malformed value.
        """
        spec = cls(text=(text or "").strip())
        for raw in (text or "").split(","):
            item = raw.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value:
                raise FaultSpecError(f"expected key=value, got {item!r}")
            try:
                spec._apply(key, value)
            except ValueError as error:
                raise FaultSpecError(f"{item!r}: {error}") from error
        return spec

    def _apply(self, key: str, value: str) -> None:
        if key in _RATE_KEYS:
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise FaultSpecError("a rate is between 0 and 1")
            self.rates[key] = rate
            if sum(self.rates.values()) > 1.0:
                raise FaultSpecError("throttle + busy + server_error must not exceed 1")
        elif key == "retry_after":
            self.retry_after = max(0, int(value))
        elif key == "task_fail":
            pattern, _, code = value.rpartition(":")
            if not pattern:
                raise FaultSpecError("task_fail needs GLOB:EXIT")
            self.task_fail.append((pattern.lower(), int(code)))
        elif key == "starttask_fail":
            self.starttask_fail.append(value.lower())
        elif key == "preempt":
            self.preempt.append(value.lower())
        elif key == "slow_allocation":
            self.slow_allocation = _duration(value)
        elif key in _QUOTA_KEYS:
            number = int(value)
            if number < 0:
                raise FaultSpecError("a quota is not negative")
            self.quotas[_QUOTA_KEYS[key]] = number
        elif key == "seed":
            self.seed = int(value)
        else:
            raise FaultSpecError(f"unknown fault {key!r}")

    def as_dict(self) -> dict[str, Any]:
        """JSON view (for ``GET /_emulator/faults``)."""
        return {
            "spec": self.text,
            "rates": self.rates,
            "retryAfter": self.retry_after,
            "taskFail": [{"glob": glob, "exitCode": code} for glob, code in self.task_fail],
            "startTaskFail": self.starttask_fail,
            "preempt": self.preempt,
            "slowAllocationSeconds": self.slow_allocation,
            "quotas": self.quotas,
            "seed": self.seed,
        }


def _matches(patterns: list[str], value: str) -> bool:
    lowered = value.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in patterns)


class FaultInjector:
    """Applies the current :class:`FaultSpec`; replaceable at runtime. Thread-safe."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        """Create an injector with ``spec`` (default: no faults)."""
        self._lock = threading.Lock()
        self._spec = spec or FaultSpec()
        self._random = random.Random(self._spec.seed)
        self._preempted: set[str] = set()

    @property
    def spec(self) -> FaultSpec:
        """The spec in force."""
        return self._spec

    def replace(self, spec: FaultSpec) -> None:
        """Put a new spec in force (the random sequence restarts from its seed)."""
        with self._lock:
            self._spec = spec
            self._random = random.Random(spec.seed)
            self._preempted.clear()

    def apply_quotas(self, quotas: Quotas) -> None:
        """Reset ``quotas`` to the defaults overridden by the spec's ``quota.*`` items."""
        defaults = Quotas()
        for name in ("pools", "active_jobs", "dedicated_cores", "low_priority_cores"):
            setattr(quotas, name, self._spec.quotas.get(name, getattr(defaults, name)))
        quotas.family_cores, quotas.family_enforced = defaults.family_cores, defaults.family_enforced

    def request_fault(self) -> BatchError | None:
        """Draw whether this API request fails; the error to answer with, or None."""
        rates = self._spec.rates
        if not rates:
            return None
        with self._lock:
            draw = self._random.random()
        retry = {"Retry-After": str(self._spec.retry_after)}
        threshold = rates.get("server_error", 0.0)
        if draw < threshold:
            return InternalError("Injected server error (local Batch service fault injection).")
        threshold += rates.get("busy", 0.0)
        if draw < threshold:
            return ServerBusy(headers=retry)
        threshold += rates.get("throttle", 0.0)
        if draw < threshold:
            return TooManyRequests(headers=retry)
        return None

    def task_exit_code(self, task_id: str) -> int | None:
        """The exit code an injected failure gives this task, or None to run it."""
        lowered = task_id.lower()
        for pattern, code in self._spec.task_fail:
            if fnmatch.fnmatchcase(lowered, pattern):
                return code
        return None

    def start_task_fails(self, pool_id: str) -> bool:
        """Whether start tasks of this pool fail."""
        return _matches(self._spec.starttask_fail, pool_id)

    def preempt(self, job_id: str, task_id: str) -> bool:
        """Whether running this task preempts its node (true once per task)."""
        if not _matches(self._spec.preempt, task_id):
            return False
        key = f"{job_id.lower()}/{task_id.lower()}"
        with self._lock:
            if key in self._preempted:
                return False
            self._preempted.add(key)
            return True

    @property
    def extra_allocation_seconds(self) -> float:
        """Extra allocation time per node."""
        return self._spec.slow_allocation
