"""Values of the formula language and how the service writes them in ``autoScaleRun.results``.

double is ``float``; doubleVec is :class:`Vec`; string is ``str``; timestamp is an aware ``datetime``;
timeinterval is :class:`Interval`. A doubleVecList is an argument list mixing doubles and doubleVecs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


class Vec(tuple[float, ...]):
    """A doubleVec."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Interval:
    """A timeinterval, in (service) seconds."""

    seconds: float


#: The ``TimeInterval_*`` constants, in seconds.
TIME_INTERVALS = {
    "TimeInterval_Zero": 0.0,
    "TimeInterval_100ns": 1e-7,
    "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3,
    "TimeInterval_Second": 1.0,
    "TimeInterval_Minute": 60.0,
    "TimeInterval_Hour": 3600.0,
    "TimeInterval_Day": 86400.0,
    "TimeInterval_Week": 7 * 86400.0,
    "TimeInterval_Year": 365 * 86400.0,
}

#: Members of a timestamp (``time().hour``); weekday counts from Sunday = 0, so Monday is 1.
TIMESTAMP_MEMBERS = ("year", "month", "day", "weekday", "hour", "minute", "second")


def timestamp_member(moment: datetime, name: str) -> float | None:
    """One member of a timestamp, or None when ``name`` is not a member."""
    lowered = name.lower()
    if lowered == "weekday":
        return float(moment.isoweekday() % 7)
    if lowered in TIMESTAMP_MEMBERS:
        return float(getattr(moment, lowered))
    return None


def type_name(value: object) -> str:
    """The language's name of a value's type."""
    if isinstance(value, float):
        return "double"
    if isinstance(value, Vec):
        return "doubleVec"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, Interval):
        return "timeinterval"
    return "metric"


def format_double(value: float) -> str:
    """A double as the service prints it: six significant digits (``96.6667``, ``3``, ``0.5``)."""
    if value != value:  # noqa: PLR0124 - NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:g}"
    return "0" if text == "-0" else text


def format_interval(seconds: float) -> str:
    """A timeinterval as .NET prints a TimeSpan (``[-][d.]hh:mm:ss[.fffffff]``)."""
    sign = "-" if seconds < 0 else ""
    ticks = round(abs(seconds) * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def format_value(value: object) -> str:
    """Any value as it appears after ``name=`` in ``autoScaleRun.results``."""
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, Vec):
        return "[" + ",".join(format_double(item) for item in value) + "]"
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, Interval):
        return format_interval(value.seconds)
    return str(value)
