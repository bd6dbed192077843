"""Autoscale on the scheduling thread: every sample period it records each pool's metrics, and it
evaluates each autoscale pool's formula when autoscale is enabled and then every evaluation interval.

Both periods are service-defined, so they pass ``time_scale`` times faster (:mod:`batch_emulator.clock`).
"""

from __future__ import annotations

from batch_emulator.autoscale.samples import SAMPLE_PERIOD_SECONDS
from batch_emulator.clock import ServiceClock
from batch_emulator.models import autoscale as model
from batch_emulator.models.account import Account
from batch_emulator.models.pools import Pool
from batch_emulator.timers import Timers


class AutoScaler:
    """Samples pool metrics and runs scheduled formula evaluations (scheduling thread, account lock held)."""

    def __init__(self, account: Account, *, timers: Timers, clock: ServiceClock) -> None:
        """Create the autoscaler; :meth:`start` arms its sampling timer."""
        self.account = account
        self._timers = timers
        self._clock = clock

    def start(self) -> None:
        """Arm the sampling timer and look at every autoscale pool (after a load)."""
        self.account.pending_autoscale.update(pool for pool in self.account.pools.values() if model.is_enabled(pool))
        self._timers.after(self._clock.timer_seconds(SAMPLE_PERIOD_SECONDS), self._sample)

    def _sample(self, now: float) -> None:
        groups = model.jobs_by_pool(self.account)
        for pool in self.account.pools.values():
            if pool.state == "active":
                roots = model.node_roots(self.account, pool)
                model.record_sample(pool, groups.get(pool.key, []), now, self._clock, roots)
        self._timers.after(self._clock.timer_seconds(SAMPLE_PERIOD_SECONDS), self._sample)

    def reconcile(self, pool: Pool, now: float) -> None:
        """Settings changed (or the pool was created): evaluate now and every interval from now on."""
        if pool.removed or pool.state != "active" or not model.is_enabled(pool):
            return
        self._evaluate(pool, pool.autoscale_generation, now)

    def _evaluate(self, pool: Pool, generation: int, now: float) -> None:
        if pool.removed or pool.state != "active" or pool.autoscale_generation != generation:
            return  # deleted, disabled or re-enabled meanwhile: a newer timer (if any) takes over
        model.autoscale_pool(self.account, pool, now, self._clock)
        delay = self._clock.timer_seconds(model.interval_seconds(pool))
        self._timers.after(delay, lambda due: self._evaluate(pool, generation, due))
