"""Daily rollup and period figures: pure functions of a day's events (sansio, no I/O).

A day's crossings are replayed in a total order (ts, device, direction, count), so the same set of events gives
the same figures whatever order, or how often, they arrived. The store layer is `server.reports`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from footfall.clock import UTC, format_ts
from footfall.messages import PURPOSES
from footfall.server.occupancy import Correction, moves, timeline
from footfall.site import OUTDOORS, SiteConfig

HOURS = 24
# Door entries counted beside an activity's check-ins: from this many minutes before its start to its end.
SLOT_LEAD_MIN = 15
CLASS_KINDS = ("class",)
ACTIVITY_KINDS = ("activity", "workshop", "themed", "joint")
KINDS = CLASS_KINDS + ACTIVITY_KINDS

Crossing = tuple[str, str, str, int]  # (ts as stored, device, direction, count)


@dataclass
class RoomDay:
    room: str
    entries: int = 0
    exits: int = 0
    peak: int = 0
    peak_at: str | None = None
    occupied_ms: int = 0
    hourly: list[int] = field(default_factory=lambda: [0] * HOURS)  # entries per local clock hour


@dataclass
class ActivityDay:
    item: str
    checkins: int = 0
    adults: int = 0
    children: int = 0
    door_entries: int | None = None  # None: not on the schedule that day

    @property
    def people(self) -> int:
        return self.adults + self.children


@dataclass
class DayRollup:
    day: dt.date
    visits: int = 0
    visits_hourly: list[int] = field(default_factory=lambda: [0] * HOURS)
    rooms: dict[str, RoomDay] = field(default_factory=dict)
    checkins: int = 0
    adults: int = 0
    children: int = 0
    identified: int = 0
    by_purpose: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PURPOSES, 0))
    people_by_purpose: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PURPOSES, 0))
    activities: dict[str, ActivityDay] = field(default_factory=dict)
    events: int = 0

    @property
    def people(self) -> int:
        return self.adults + self.children

    @property
    def anonymous(self) -> int:
        return self.checkins - self.identified


def entrance_direction(site: SiteConfig) -> dict[str, str]:
    """Counters on doors to the outdoors -> the direction that brings people into the building."""
    out = {}
    for device, door in site.doors_by_device.items():
        if door.outside == OUTDOORS:
            out[device] = "in"
        elif door.inside == OUTDOORS:
            out[device] = "out"
    return out


def slot_bounds(item: Mapping[str, Any], site: SiteConfig) -> tuple[str, str]:
    """UTC [from, to) of an item's door-count window, as stored timestamps (comparable as strings)."""
    date = dt.date.fromisoformat(item["date"])
    start = dt.datetime.combine(date, dt.time.fromisoformat(item["start"]), tzinfo=site.timezone)
    end = dt.datetime.combine(date, dt.time.fromisoformat(item["end"]), tzinfo=site.timezone)
    return format_ts(start - dt.timedelta(minutes=SLOT_LEAD_MIN)), format_ts(end)


class _Hours:
    """Stored UTC timestamp -> local clock hour, cached per minute (offsets may be half hours)."""

    def __init__(self, site: SiteConfig):
        self.tz = site.timezone
        self.cache: dict[str, int] = {}

    def __call__(self, ts: str) -> int:
        key = ts[:16]
        hour = self.cache.get(key)
        if hour is None:
            when = dt.datetime.fromisoformat(key).replace(tzinfo=UTC)
            hour = self.cache[key] = when.astimezone(self.tz).hour
        return hour


def _ms(ts: str) -> int:
    when = dt.datetime.fromisoformat(ts.rstrip("Z")).replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def rollup_day(
    site: SiteConfig,
    day: dt.date,
    crossings: Iterable[Crossing],
    checkins: Iterable[Mapping[str, Any]],
    items: Iterable[Mapping[str, Any]] = (),
    identified_purged: int = 0,
    corrections: Iterable[Correction] = (),
) -> DayRollup:
    """One local day's figures from its crossings, its kiosk check-ins and the schedule items of that day.

    Occupancy and peak follow `server.occupancy.replay` (one definition, docs/reports.md): `timeline` order, never
    below zero, staff `corrections` (at, room, value) applied at their time. A room counts as occupied from the moment it
    stops being empty until it is empty again; a room still occupied after the building's last crossing of the
    day counts until that crossing (nothing is known after it). `identified_purged` adds check-ins whose member
    code retention has removed, so a recount keeps them.
    """
    out = DayRollup(day=day, rooms={room.id: RoomDay(room.id) for room in site.rooms})
    hour_of = _Hours(site)
    entering = entrance_direction(site)
    doors = site.doors_by_device
    slots: dict[str, list[tuple[str, str, ActivityDay]]] = {}
    for item in items:
        activity = out.activities[item["id"]] = ActivityDay(item["id"], door_entries=0)
        lo, hi = slot_bounds(item, site)
        slots.setdefault(item["room"], []).append((lo, hi, activity))
    occupancy: dict[str, int] = {}
    since: dict[str, str] = {}
    last_ts = None
    paths: dict[tuple[str, str], list[tuple[str, int]]] = {}  # (device, direction) -> [(room, +1 / -1)]
    for device, door in doors.items():
        for direction in ("in", "out"):
            paths[(device, direction)] = moves(door, direction, 1)
    for step in timeline(crossings, corrections):
        if step[1] == 1:  # a staff correction: the room holds `value` people from then on
            ts, _kind, room, value = step
            r = out.rooms.get(room)
            if r is None:
                r = out.rooms[room] = RoomDay(room)
            before = occupancy.get(room, 0)
            if before == 0 and value > 0:
                since[room] = ts
            elif before > 0 and value == 0:
                r.occupied_ms += _ms(ts) - _ms(since.pop(room))
            if value > r.peak:
                r.peak, r.peak_at = value, ts
            occupancy[room] = value
            continue
        ts, _kind, device, direction, count = step
        out.events += 1
        path = paths.get((device, direction))
        if path is None:
            continue
        last_ts = ts
        if entering.get(device) == direction:
            out.visits += count
            out.visits_hourly[hour_of(ts)] += count
        for room, sign in path:
            delta = sign * count
            r = out.rooms.get(room)
            if r is None:
                r = out.rooms[room] = RoomDay(room)
            now = occupancy.get(room, 0)
            if delta > 0:
                r.entries += delta
                r.hourly[hour_of(ts)] += delta
                for lo, hi, activity in slots.get(room, ()):
                    if lo <= ts < hi:
                        activity.door_entries = (activity.door_entries or 0) + delta
                if now == 0:
                    since[room] = ts
                now += delta
                if now > r.peak:
                    r.peak, r.peak_at = now, ts
            else:
                r.exits -= delta
                left = max(0, now + delta)
                if now > 0 and left == 0:
                    r.occupied_ms += _ms(ts) - _ms(since.pop(room))
                now = left
            occupancy[room] = now
    if last_ts is not None:
        for room, start in since.items():
            if occupancy.get(room, 0) > 0:
                out.rooms[room].occupied_ms += _ms(last_ts) - _ms(start)
    for row in checkins:
        out.events += 1
        adults, children = row.get("adults") or 0, row.get("children") or 0
        purpose = row.get("purpose") or "other"
        out.checkins += 1
        out.adults += adults
        out.children += children
        out.by_purpose[purpose] = out.by_purpose.get(purpose, 0) + 1
        out.people_by_purpose[purpose] = out.people_by_purpose.get(purpose, 0) + adults + children
        if row.get("member"):
            out.identified += 1
        if row.get("activity"):
            activity = out.activities.get(row["activity"])
            if activity is None:
                activity = out.activities[row["activity"]] = ActivityDay(row["activity"])
            activity.checkins += 1
            activity.adults += adults
            activity.children += children
    out.identified += identified_purged
    return out


# --- period figures -------------------------------------------------------------------------------


def _share(part: float, whole: float, digits: int = 3) -> float | None:
    return round(part / whole, digits) if whole else None


def summarize(
    site: SiteConfig,
    kind: str,
    start: dt.date,
    end: dt.date,
    days: Mapping[dt.date, DayRollup],
    items: Iterable[Mapping[str, Any]],
    today: dt.date,
) -> dict[str, Any]:
    """The figures of a period [start, end] (inclusive) from its daily rollups: one dict that the pages, the
    JSON API, the exports and the CLI all show. Days without a rollup had no events (closed)."""
    covered = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    covered = [d for d in covered if d <= today]
    series = []
    hours = [0] * HOURS
    rooms = {room.id: RoomDay(room.id) for room in site.rooms}
    peak_day: dict[str, str | None] = dict.fromkeys(rooms)
    capacity = {room.id: room.capacity for room in site.rooms}
    over_days = dict.fromkeys(rooms, 0)  # days whose peak went above the room's capacity
    total = DayRollup(day=start)
    for d in covered:
        r = days.get(d) or DayRollup(day=d)
        series.append({"date": d.isoformat(), "visits": r.visits, "checkins": r.checkins, "people": r.people})
        hours = [a + b for a, b in zip(hours, r.visits_hourly, strict=True)]
        for field_name in ("visits", "checkins", "adults", "children", "identified"):
            setattr(total, field_name, getattr(total, field_name) + getattr(r, field_name))
        for p in set(r.by_purpose) | set(r.people_by_purpose):
            total.by_purpose[p] = total.by_purpose.get(p, 0) + r.by_purpose.get(p, 0)
            total.people_by_purpose[p] = total.people_by_purpose.get(p, 0) + r.people_by_purpose.get(p, 0)
        for room_id, rd in r.rooms.items():
            acc = rooms.setdefault(room_id, RoomDay(room_id))
            acc.entries += rd.entries
            acc.exits += rd.exits
            acc.occupied_ms += rd.occupied_ms
            acc.hourly = [a + b for a, b in zip(acc.hourly, rd.hourly, strict=True)]
            if rd.peak > acc.peak:
                acc.peak, acc.peak_at, peak_day[room_id] = rd.peak, rd.peak_at, d.isoformat()
            if capacity.get(room_id) and rd.peak > capacity[room_id]:
                over_days[room_id] = over_days.get(room_id, 0) + 1
    days_open = sum(1 for row in series if row["visits"] > 0)
    attendance: dict[str, ActivityDay] = {}
    for d in covered:
        for item_id, a in (days.get(d) or DayRollup(day=d)).activities.items():
            acc_a = attendance.setdefault(item_id, ActivityDay(item_id))
            acc_a.checkins += a.checkins
            acc_a.adults += a.adults
            acc_a.children += a.children
            if a.door_entries is not None:
                acc_a.door_entries = (acc_a.door_entries or 0) + a.door_entries
    activities = []
    by_kind = {k: {"held": 0, "participants": 0, "checkins": 0} for k in KINDS}
    scheduled = set()
    last = min(end, today)
    for item in sorted(items, key=lambda i: (i["date"], i["start"], i["id"])):
        if not start.isoformat() <= item["date"] <= last.isoformat():
            continue
        scheduled.add(item["id"])
        a = attendance.get(item["id"]) or ActivityDay(item["id"])
        activities.append(
            {
                **{
                    k: item.get(k)
                    for k in ("id", "date", "start", "end", "kind", "title", "title_en", "room")
                },
                **{k: item.get(k) for k in ("capacity", "partner")},
                "checkins": a.checkins,
                "adults": a.adults,
                "children": a.children,
                "people": a.people,
                "door_entries": a.door_entries or 0,
            }
        )
        k = by_kind.setdefault(item["kind"], {"held": 0, "participants": 0, "checkins": 0})
        k["held"] += 1
        k["participants"] += a.people
        k["checkins"] += a.checkins
    unscheduled = sum(a.checkins for i, a in attendance.items() if i not in scheduled)
    room_rows = []
    for room in site.rooms:
        acc = rooms[room.id]
        n_days = max(days_open, 1)
        room_rows.append(
            {
                "room": room.id,
                "name": room.name,
                "name_en": room.name_en,
                "capacity": room.capacity,
                "entries": acc.entries,
                "exits": acc.exits,
                "peak": acc.peak,
                "peak_at": acc.peak_at,
                "peak_day": peak_day.get(room.id),
                "over_capacity_days": over_days.get(room.id, 0),
                "utilisation": _share(acc.peak, room.capacity),
                "occupied_hours": round(acc.occupied_ms / 3_600_000, 2),
                "occupied_hours_per_day": round(acc.occupied_ms / 3_600_000 / n_days, 2)
                if days_open
                else 0.0,
                "hourly": acc.hourly,
            }
        )
    busiest_rooms = sorted(room_rows, key=lambda r: (-r["entries"], r["room"]))
    busiest_hours = sorted(range(HOURS), key=lambda h: (-hours[h], h))
    headline = {
        "days": len(covered),
        "days_open": days_open,
        "visits": total.visits,
        "average_daily_visits": round(total.visits / days_open, 1) if days_open else 0.0,
        "checkins": total.checkins,
        "people": total.people,
        "checkin_rate": _share(total.checkins, total.visits),
        "activities_held": sum(by_kind[k]["held"] for k in ACTIVITY_KINDS),
        "activity_participants": sum(by_kind[k]["participants"] for k in ACTIVITY_KINDS),
        "classes_held": sum(by_kind[k]["held"] for k in CLASS_KINDS),
        "class_attendance": sum(by_kind[k]["participants"] for k in CLASS_KINDS),
        "busiest_room": busiest_rooms[0]["room"] if total.visits and busiest_rooms else None,
        "busiest_hour": busiest_hours[0] if total.visits else None,
    }
    return {
        "period": {"kind": kind, "start": start.isoformat(), "end": end.isoformat()},
        "site": {"id": site.id, "name": site.name},
        "headline": headline,
        "checkins": {
            "total": total.checkins,
            "adults": total.adults,
            "children": total.children,
            "people": total.people,
            "identified": total.identified,
            "anonymous": total.anonymous,
            "rate": _share(total.checkins, total.visits),
            "by_purpose": total.by_purpose,
            "people_by_purpose": total.people_by_purpose,
            "unscheduled_activity_checkins": unscheduled,
        },
        "days": series,
        "hours": hours,
        "rooms": room_rows,
        "busiest_rooms": [r["room"] for r in busiest_rooms[:3] if r["entries"]],
        "busiest_hours": [h for h in busiest_hours[:3] if hours[h]],
        "kinds": by_kind,
        "activities": activities,
    }
