"""Time and duration formats of the Batch wire: ISO-8601 bodies, RFC 1123 headers, ISO durations, ETags."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

# FILETIME (100 ns ticks since 1601-01-01) of the Unix epoch; Batch ETags look like FILETIME in hex.
_FILETIME_EPOCH_OFFSET = 116444736000000000
_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
#: What Batch reports for "no limit" durations (TimeSpan.MaxValue).
UNLIMITED_DURATION = "P10675199DT2H48M5.4775807S"


def now_ts() -> float:
    """Return the current time as a Unix timestamp (what the models store)."""
    return datetime.now(UTC).timestamp()


def from_ts(ts: float) -> datetime:
    """Convert a stored Unix timestamp to an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def iso(value: datetime | float) -> str:
    """Format a time as Batch does in JSON bodies (``2026-11-25T13:29:26.123456Z``)."""
    moment = from_ts(value) if isinstance(value, float | int) else value.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc1123(value: datetime | float) -> str:
    """Format a time as an HTTP date (``Wed, 25 Nov 2026 13:29:26 GMT``)."""
    moment = from_ts(value) if isinstance(value, float | int) else value.astimezone(UTC)
    return format_datetime(moment, usegmt=True)


def parse_http_date(text: str) -> datetime | None:
    """Parse an HTTP date header; None when it is not one."""
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` or an offset; up to 7 fractional digits as Batch sends).

    Raises:
        ValueError: not a timestamp.
    """
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    match = re.match(r"^(.*?\.\d{6})\d+(.*)$", value)
    if match:  # Python parses at most microseconds
        value = match.group(1) + match.group(2)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def etag_for(ts: float) -> str:
    """Return a Batch-style ETag (``0x8DC...``) derived from a modification timestamp."""
    return f"0x{_FILETIME_EPOCH_OFFSET + round(ts * 10_000_000):X}"


def parse_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration such as ``PT30S`` or ``P1DT2H``; a year counts 365 days and a month 30.

    The service reads years and months so: the Azure CLI's recording sends ``P3Y6M4DT12H30M5S`` and gets
    ``P1279DT12H30M5S`` back.

    Raises:
        ValueError: not a duration.
    """
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    parts = {name: float(value) for name, value in match.groupdict().items() if value and name != "sign"}
    delta = timedelta(
        weeks=parts.get("weeks", 0.0),
        days=parts.get("days", 0.0) + 365 * parts.get("years", 0.0) + 30 * parts.get("months", 0.0),
        hours=parts.get("hours", 0.0),
        minutes=parts.get("minutes", 0.0),
        seconds=parts.get("seconds", 0.0),
    )
    return -delta if match.group("sign") else delta


def format_duration(delta: timedelta) -> str:
    """Format a duration as ISO-8601 (``P1DT2H3M4.5S``)."""
    total = delta.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P"
    if days:
        text += f"{int(days)}D"
    time_part = ""
    if hours:
        time_part += f"{int(hours)}H"
    if minutes:
        time_part += f"{int(minutes)}M"
    if seconds or not (days or hours or minutes):
        time_part += f"{seconds:.7f}".rstrip("0").rstrip(".") + "S"
    return text + ("T" + time_part if time_part else "")
