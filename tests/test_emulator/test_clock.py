"""The service clock: service-defined intervals pass ``time_scale`` times faster, never below a floor."""

from __future__ import annotations

import pytest

from batch_emulator.clock import MIN_TIMER_SECONDS, ServiceClock


def test_intervals_shrink_by_the_scale() -> None:
    clock = ServiceClock(600)
    assert clock.real_seconds(300) == 0.5
    assert clock.service_seconds(0.5) == 300
    assert clock.timer_seconds(300) == 0.5
    assert ServiceClock().real_seconds(30) == 30


def test_timers_have_a_floor() -> None:
    assert ServiceClock(1e9).timer_seconds(30) == MIN_TIMER_SECONDS
    assert ServiceClock(1e9).real_seconds(30) == pytest.approx(3e-8)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_refuses_a_scale_that_is_not_a_positive_number(scale: float) -> None:
    with pytest.raises(ValueError, match="time_scale must be a positive number"):
        ServiceClock(scale)
