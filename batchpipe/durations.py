"""One duration syntax for every setting and option that takes a time: ``90``, ``90s``, ``30m``, ``2h``, ``1d``,
combinations such as ``1h30m``, and ISO 8601 (``PT30M``, ``P1DT2H``)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_NUMBER = r"\d+(?:\.\d+)?"
_SHORT = re.compile(rf"^(?:({_NUMBER})d)?(?:({_NUMBER})h)?(?:({_NUMBER})m)?(?:({_NUMBER})s)?$")
_ISO = re.compile(rf"^P(?:({_NUMBER})D)?(?:T(?:({_NUMBER})H)?(?:({_NUMBER})M)?(?:({_NUMBER})S)?)?$")

#: How the error messages describe the accepted forms.
DURATION_FORMS = "seconds (90) or a duration such as 90s, 30m, 2h, 1d, 1h30m or ISO 8601 PT30M"


def parse_seconds(value: str | float) -> float:
    """Read a duration as seconds.

    Args:
        value: a number of seconds, or text in one of the :data:`DURATION_FORMS`.

    Returns:
        The duration in seconds.

    Raises:
        ValueError: the text is not a duration (the message lists the accepted forms).
    """
    if isinstance(value, bool):
        raise ValueError(f"use {DURATION_FORMS}")
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    for pattern in (_SHORT, _ISO):
        match = pattern.match(text if pattern is _SHORT else text.upper())
        if match and any(match.groups()) and not text.upper().endswith("T"):
            return sum(float(part) * unit for part, unit in zip(match.groups(), _UNITS.values(), strict=True) if part)
    raise ValueError(f"use {DURATION_FORMS}")


def parse_timedelta(value: str | float) -> timedelta:
    """:func:`parse_seconds` as a :class:`~datetime.timedelta`."""
    return timedelta(seconds=parse_seconds(value))


def describe(seconds: float) -> str:
    """A short human form: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    return f"{secs}s"
