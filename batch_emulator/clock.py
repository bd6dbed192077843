"""The service clock: how service-defined intervals map to real seconds.

Batch defines intervals in service time (a schedule's recurrence, an autoscale evaluation every 5
minutes or more, a metric sample every 30 seconds). With ``time_scale`` > 1 these intervals pass that
many times faster, so tests need not wait minutes. Timestamps stay real: ``time()`` in a formula and
every time on the wire are the machine's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The shortest real delay a service-defined timer gets, however large the scale (keeps the scheduler from spinning).
MIN_TIMER_SECONDS = 0.01


@dataclass(frozen=True)
class ServiceClock:
    """Converts between service seconds and real seconds.

    Attributes:
        time_scale: How many service seconds pass per real second (1 = real time).
    """

    time_scale: float = 1.0

    def __post_init__(self) -> None:
        """Check the scale.

        Raises:
            ValueError: the scale is not a positive number.
        """
        if not self.time_scale > 0 or self.time_scale == float("inf"):
            raise ValueError(f"time_scale must be a positive number, not {self.time_scale!r}")

    def real_seconds(self, service_seconds: float) -> float:
        """Real seconds that a service-defined interval of ``service_seconds`` lasts."""
        return service_seconds / self.time_scale

    def timer_seconds(self, service_seconds: float) -> float:
        """Real delay of a recurring service timer: :meth:`real_seconds`, but at least ``MIN_TIMER_SECONDS``."""
        return max(MIN_TIMER_SECONDS, self.real_seconds(service_seconds))

    def service_seconds(self, real_seconds: float) -> float:
        """Service seconds that pass in ``real_seconds`` of real time."""
        return real_seconds * self.time_scale
