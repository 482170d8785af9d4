"""Today's schedule (retained `footfall/<site>/schedule`), validated item by item; and room states. Pure.

Payload (docs/kiosk.md): {"v":1,"date":"YYYY-MM-DD","items":[{"id","title","title_en","kind","room","start","end",
"capacity"}]}; kind is "class" or "activity", start/end are local "HH:MM", capacity an int >= 0 (0: no limit).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from footfall.errors import ValidationError
from footfall.messages import load_json
from footfall.topics import NAME_RE

logger = logging.getLogger(__name__)

KINDS = ("class", "activity")
MAX_SCHEDULE = 256 * 1024
MAX_ITEMS = 200
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _text(item: dict, key: str, limit: int, optional: bool = False) -> str | None:
    value = item.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise ValidationError(f"must be a string of 1..{limit} characters", key)
    return value


def parse_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValidationError("must be an object", "items[]")
    kind = item.get("kind")
    if kind not in KINDS:
        raise ValidationError(f"must be one of {', '.join(KINDS)}", "kind")
    start, end = item.get("start"), item.get("end")
    for key, value in (("start", start), ("end", end)):
        if not isinstance(value, str) or not _HHMM.match(value):
            raise ValidationError('must be local time "HH:MM"', key)
    if end < start:
        raise ValidationError("must not be before start", "end")
    room = item.get("room")
    if room is not None and (not isinstance(room, str) or not NAME_RE.match(room)):
        raise ValidationError("must be a room id", "room")
    capacity = item.get("capacity", 0)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
        raise ValidationError("must be an integer >= 0", "capacity")
    title = _text(item, "title", 100)
    return {
        "id": _text(item, "id", 64),
        "title": title,
        "title_en": _text(item, "title_en", 100, optional=True) or title,
        "kind": kind,
        "room": room,
        "start": start,
        "end": end,
        "capacity": capacity,
    }


def parse_schedule(payload: bytes | str) -> dict[str, Any]:
    """Validate a schedule payload; bad items are dropped (logged), a bad envelope raises ValidationError."""
    obj = load_json(payload, max_bytes=MAX_SCHEDULE, max_depth=4)
    if not isinstance(obj, dict):
        raise ValidationError("must be a JSON object", "payload")
    if obj.get("v") != 1:
        raise ValidationError("must be 1", "v")
    date = obj.get("date")
    if not isinstance(date, str) or not _DATE.match(date):
        raise ValidationError('must be "YYYY-MM-DD"', "date")
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise ValidationError("not a date", "date") from None
    items = obj.get("items")
    if not isinstance(items, list):
        raise ValidationError("must be a list", "items")
    good = []
    for index, raw in enumerate(items[:MAX_ITEMS]):
        try:
            good.append(parse_item(raw))
        except ValidationError as exc:
            logger.warning("schedule item %d dropped: %s", index, exc)
    good.sort(key=lambda i: (i["start"], i["end"], i["id"]))
    return {"v": 1, "date": date, "items": good}


def local_now(now: dt.datetime, tz, day_starts: dt.time) -> tuple[dt.date, str]:
    """(business day, "HH:MM" local) of a UTC instant."""
    local = now.astimezone(tz)
    shift = dt.timedelta(hours=day_starts.hour, minutes=day_starts.minute)
    return (local - shift).date(), local.strftime("%H:%M")


def todays_items(schedule: dict[str, Any] | None, day: dt.date) -> list[dict[str, Any]]:
    """The schedule's items if it is for `day` (a stale schedule from yesterday shows nothing)."""
    if not schedule or schedule.get("date") != day.isoformat():
        return []
    return list(schedule["items"])


def open_items(items: list[dict[str, Any]], hhmm: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Items not yet over at local time `hhmm` (the ones a visitor can still check in to), of one kind."""
    return [i for i in items if i["end"] >= hhmm and (kind is None or i["kind"] == kind)]


def parse_room_state(payload: bytes) -> dict[str, Any] | None:
    """The fields the kiosk shows from a retained room state; None when it is not one (or cleared)."""
    try:
        obj = load_json(payload, max_depth=4) if payload else None
    except ValidationError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("room"), str):
        return None
    level = obj.get("level") if obj.get("level") in ("ok", "busy", "full") else "ok"
    name = obj.get("name") if isinstance(obj.get("name"), str) else obj["room"]
    name_en = obj.get("name_en") if isinstance(obj.get("name_en"), str) else name
    occupancy = obj.get("occupancy") if isinstance(obj.get("occupancy"), int) else None
    capacity = obj.get("capacity") if isinstance(obj.get("capacity"), int) else None
    floor = obj.get("floor")
    floor = floor if isinstance(floor, int) and not isinstance(floor, bool) and floor != 0 else None
    return {
        "room": obj["room"],
        "name": name,
        "name_en": name_en,
        "level": level,
        "occupancy": occupancy,
        "capacity": capacity,
        "floor": floor,
    }
