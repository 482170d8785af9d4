"""The activity and class schedule: staff edit it in the dashboard, kiosks get today's items retained on
`footfall/<site>/schedule` as {"v":1,"date":"YYYY-MM-DD","items":[{id,title,title_en,kind,room,start,end,capacity}]}.

Validation is pure (`validate`); the store functions mark the affected days dirty so attendance is recounted.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from typing import Any

from footfall import topics
from footfall.clock import format_ts, local_day
from footfall.messages import VERSION, encode_json
from footfall.server.reports import mark_dirty, parse_day
from footfall.server.rollup import KINDS
from footfall.server.store import Store
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
FIELDS = ("title", "title_en", "kind", "room", "date", "start", "end", "capacity", "partner")
KIOSK_FIELDS = ("id", "title", "title_en", "kind", "room", "start", "end", "capacity")
MAX_TEXT = 100  # the kiosk shows at most 100 characters


class ScheduleError(ValueError):
    """A bad schedule item: `field` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _text(body: dict[str, Any], key: str, required: bool) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ScheduleError(key, "required")
        return None
    if not isinstance(value, str):
        raise ScheduleError(key, "must be a string")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise ScheduleError(key, f"at most {MAX_TEXT} characters")
    return value


def validate(body: Any, site: SiteConfig) -> dict[str, Any]:
    """A full item from a request body (JSON or a form): the fields below, cleaned; raises ScheduleError."""
    if not isinstance(body, dict):
        raise ScheduleError("body", "must be an object")
    item: dict[str, Any] = {
        "title": _text(body, "title", True),
        "title_en": _text(body, "title_en", False),
        "kind": _text(body, "kind", True),
        "room": _text(body, "room", True),
        "partner": _text(body, "partner", False),
    }
    if item["kind"] not in KINDS:
        raise ScheduleError("kind", f"must be one of {', '.join(KINDS)}")
    if item["room"] not in site.rooms_by_id:
        raise ScheduleError("room", f"no room {item['room']!r}")
    if item["kind"] == "joint" and not item["partner"]:
        raise ScheduleError("partner", "required for a joint event (the partner organisation)")
    try:
        item["date"] = parse_day(_text(body, "date", True) or "").isoformat()
    except ValueError as exc:
        raise ScheduleError("date", str(exc)) from None
    for key in ("start", "end"):
        value = _text(body, key, True)
        if not TIME_RE.match(value or ""):
            raise ScheduleError(key, "must be HH:MM")
        item[key] = value
    if item["end"] <= item["start"]:
        raise ScheduleError("end", "must be after the start")
    capacity = body.get("capacity")
    if capacity in (None, ""):
        capacity = site.rooms_by_id[item["room"]].capacity
    if isinstance(capacity, str) and capacity.strip().isascii() and capacity.strip().isdigit():
        capacity = int(capacity)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= 100_000:
        raise ScheduleError("capacity", "must be a whole number from 0 to 100000")
    item["capacity"] = capacity
    return item


def new_id(date: str) -> str:
    return f"{date.replace('-', '')}-{secrets.token_hex(3)}"


def get_item(store: Store, item_id: str) -> dict[str, Any] | None:
    return store.schedule_item(item_id)


def list_items(store: Store, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    return store.schedule_between(start, end)


def create_item(store: Store, site: SiteConfig, body: Any, now: dt.datetime) -> dict[str, Any]:
    item = validate(body, site)
    item_id = body.get("id") if isinstance(body, dict) else None
    if item_id is not None and (not isinstance(item_id, str) or not ID_RE.match(item_id)):
        raise ScheduleError("id", "must match [a-z0-9][a-z0-9-]{0,62}")
    item = {
        "id": item_id or new_id(item["date"]),
        **item,
        "created_at": format_ts(now),
        "updated_at": format_ts(now),
    }
    with store.transaction() as tx:
        if tx.schedule_item(item["id"]) is not None:
            raise ScheduleError("id", f"an item {item['id']!r} exists already")
        tx.insert_schedule_item(item)
        mark_dirty(tx, item["date"])
    logger.info("schedule: added %s %s on %s", item["kind"], item["id"], item["date"])
    return item


def update_item(
    store: Store, site: SiteConfig, item_id: str, body: Any, now: dt.datetime
) -> dict[str, Any] | None:
    """Replace an item's fields (fields missing from `body` keep their value); None when there is no such item."""
    old = get_item(store, item_id)
    if old is None:
        return None
    merged = {**{k: old[k] for k in FIELDS}, **(body if isinstance(body, dict) else {})}
    item = validate(merged, site)
    with store.transaction() as tx:
        tx.update_schedule_item(item_id, item, now)
        mark_dirty(tx, old["date"])
        mark_dirty(tx, item["date"])
    logger.info("schedule: changed %s", item_id)
    return get_item(store, item_id)


def delete_item(store: Store, item_id: str) -> dict[str, Any] | None:
    old = get_item(store, item_id)
    if old is None:
        return None
    with store.transaction() as tx:
        tx.delete_schedule_item(item_id)
        mark_dirty(tx, old["date"])
    logger.info("schedule: removed %s", item_id)
    return old


def kiosk_payload(items: list[dict[str, Any]], day: dt.date) -> dict[str, Any]:
    """The retained schedule message for `day` (pure)."""
    today = sorted((i for i in items if i["date"] == day.isoformat()), key=lambda i: (i["start"], i["id"]))
    items = []
    for i in today:
        # Kiosks know two kinds (the check-in purpose): "class" and "activity"; `category` keeps the detail.
        kind = "class" if i["kind"] == "class" else "activity"
        items.append({**{k: i.get(k) for k in KIOSK_FIELDS}, "kind": kind, "category": i["kind"]})
    return {"v": VERSION, "date": day.isoformat(), "items": items}


def schedule_message(site: SiteConfig, store: Store, now: dt.datetime) -> tuple[str, bytes]:
    """(topic, payload) of today's schedule: publish it with qos=1, retain=True."""
    day = local_day(now, site.timezone, site.day_starts)
    payload = kiosk_payload(list_items(store, day, day), day)
    return topics.schedule(site.id, site.prefix), encode_json(payload)


def publish_schedule(site: SiteConfig, store: Store, hub: Any, now: dt.datetime) -> bool:
    """Ask ingest, the only publisher of the retained schedule, to republish it; False without an MQTT link."""
    if not getattr(hub, "mqtt", False):
        logger.debug("no MQTT link: today's schedule is not published")
        return False
    hub.ask_ingest({"v": 1, "cmd": "republish-schedule"})
    return True
