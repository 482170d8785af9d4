"""Time helpers: devices store and send UTC; the center's day is local (site time zone, day start)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def format_ts(when: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as on the wire: 2026-11-28T01:30:12.345Z."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00": ingest calls this per event


def parse_ts(text: str) -> dt.datetime:
    """Parse a wire timestamp; it must carry a zone (Z or an offset). Raises ValueError."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    return when.astimezone(UTC)


def parse_day_start(text: str) -> dt.time:
    """'04:00' -> time(4, 0). Raises ValueError."""
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def local_day(when: dt.datetime, tz: ZoneInfo, day_starts: dt.time = dt.time(0, 0)) -> dt.date:
    """The center's business day that `when` belongs to (a day starting at 04:00 owns 00:00-03:59 of the next)."""
    local = when.astimezone(tz)
    shift = dt.timedelta(hours=day_starts.hour, minutes=day_starts.minute)
    return (local - shift).date()


def day_bounds(
    day: dt.date, tz: ZoneInfo, day_starts: dt.time = dt.time(0, 0)
) -> tuple[dt.datetime, dt.datetime]:
    """UTC [start, end) of a local business day."""
    start = dt.datetime.combine(day, day_starts, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), day_starts, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)
