"""Job schedules on the scheduling thread: a timer per schedule makes its jobs when they are due, and
schedules waiting for a running job (or, when deleting, for their jobs to go) are looked at again after
every scheduling step. Recurrence and start windows pass ``time_scale`` times faster.
"""

from __future__ import annotations

from batch_emulator.clock import ServiceClock
from batch_emulator.models import schedules as model
from batch_emulator.models.account import Account
from batch_emulator.models.schedules import Schedule
from batch_emulator.timers import Timers


class ScheduleTimer:
    """Makes the jobs of every job schedule on time (scheduling thread, account lock held)."""

    def __init__(self, account: Account, *, timers: Timers, clock: ServiceClock) -> None:
        """Create the timer; schedules are picked up from ``account.pending_schedules``."""
        self.account = account
        self._timers = timers
        self._clock = clock
        self._waiting: set[Schedule] = set()
        self._armed: dict[Schedule, float] = {}  # the due time each schedule's live timer is set for

    def start(self) -> None:
        """Look at every schedule (after a load)."""
        self.account.pending_schedules.update(self.account.schedules.values())

    def reconcile(self, schedule: Schedule, now: float) -> None:
        """Act on a schedule: make a due job, complete it, or finish deleting it; arm its next timer."""
        self._waiting.discard(schedule)
        if schedule.removed or schedule.state == "completed":
            self._armed.pop(schedule, None)
            return
        if schedule.state == "deleting":
            if not model.finish_deleting(self.account, schedule, now):
                self._waiting.add(schedule)
            return
        due = model.run_due(self.account, schedule, now, self._clock)
        if schedule.state == "completed":
            return
        if due is None or due <= now:
            self._waiting.add(schedule)  # a running job (or a completion) decides what happens next
            return
        if self._armed.get(schedule) == due:
            return  # a timer for this due time is already set

        def fire(when: float) -> None:
            if self._armed.get(schedule) == due:  # a newer plan replaced this timer otherwise
                del self._armed[schedule]
                self.reconcile(schedule, when)

        self._armed[schedule] = due
        self._timers.after(due - now, fire)

    def after_step(self, now: float) -> None:
        """Look again at schedules that wait for their jobs (called after every scheduling step)."""
        for schedule in list(self._waiting):
            self.reconcile(schedule, now)
