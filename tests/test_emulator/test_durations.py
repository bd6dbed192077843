"""Durations are read and shown back as the service shows them (recordings of schedules and of the Azure CLI)."""

from __future__ import annotations

import pytest

from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.models.validation import optional_duration_seconds
from batch_emulator.timefmt import UNLIMITED_DURATION


@pytest.mark.parametrize(
    ("sent", "shown", "seconds"),
    [
        ("PT01H00M00S", "PT1H", 3600),  # a job schedule's startWindow, azure-batch 15 recording
        ("P3Y6M4DT12H30M5S", "P1279DT12H30M5S", 1279 * 86400 + 45005),  # az batch job set, CLI recording
        ("pt15m", "PT15M", 900),
        ("P1W", "P7D", 7 * 86400),
        (UNLIMITED_DURATION, UNLIMITED_DURATION, 10675199 * 86400 + 10085.4775807),
    ],
)
def test_durations_are_kept_as_the_service_shows_them(sent: str, shown: str, seconds: float) -> None:
    body = {"maxWallClockTime": sent}
    assert optional_duration_seconds(body, "maxWallClockTime") == pytest.approx(seconds)
    assert body["maxWallClockTime"] == shown


@pytest.mark.parametrize("bad", ["1 hour", "P", "-PT1H", "PT1.5Y"])
def test_a_bad_duration_names_the_property(bad: str) -> None:
    with pytest.raises(InvalidPropertyValue) as raised:
        optional_duration_seconds({"retentionTime": bad}, "retentionTime", path="constraints.retentionTime")
    assert ("PropertyName", "constraints.retentionTime") in raised.value.values
