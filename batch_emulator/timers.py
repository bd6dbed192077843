"""Timers of the scheduling thread (node lifecycle steps, job deadlines), kept in a heap."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from batch_emulator.timefmt import now_ts

Action = Callable[[float], None]


class Timers:
    """Actions due at a time; only the scheduling thread touches them."""

    def __init__(self) -> None:
        """Create an empty heap."""
        self._heap: list[tuple[float, int, Action]] = []
        self._order = itertools.count()

    def after(self, delay: float, action: Action) -> None:
        """Run ``action(now)`` once ``delay`` seconds have passed."""
        heapq.heappush(self._heap, (now_ts() + max(0.0, delay), next(self._order), action))

    def seconds_to_next(self) -> float | None:
        """Seconds until the next action is due (negative when overdue), None when there is none."""
        return self._heap[0][0] - now_ts() if self._heap else None

    def run_due(self, now: float) -> None:
        """Run every action due by ``now``, in order."""
        while self._heap and self._heap[0][0] <= now:
            _, _, action = heapq.heappop(self._heap)
            action(now)
