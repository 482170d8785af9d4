"""A seeded year at the reference center (DOMAIN.md), as its devices would report it, with the ground truth.

About 300 visits a day on the days the center is open (closed Mondays and public holidays), 10 weekly interest
classes, 55 weekend parent-child workshops, 95 themed activities, 20 joint events with partner organisations
and 24 organisational-life meetings. People move in groups; a door counter reports a group as one crossing
(`count` = its size); a share of groups check in at the hall kiosk (with the activity's id when they came for
one). The truth is computed here from the simulated movements, independently of the code under test: the
generator knows where everyone is at every millisecond.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from footfall import member_code, topics
from footfall.clock import format_ts
from footfall.messages import Checkin, Crossing
from footfall.server.ingest import Incoming
from footfall.site import SiteConfig

H = 3_600_000  # ms
M = 60_000
YEAR = 2025
HOLIDAYS = {(1, 1), *((1, d) for d in range(28, 32)), *((2, d) for d in range(1, 5)), (4, 4), *((5, d) for d in range(1, 6)), (5, 31), *((10, d) for d in range(1, 9))}  # fmt: skip
COURSES = [
    ("书法", "Calligraphy"), ("国画", "Chinese painting"), ("太极拳", "Tai chi"), ("合唱", "Choir"),
    ("智能手机", "Smartphone skills"), ("英语口语", "Spoken English"), ("舞蹈", "Dance"), ("摄影", "Photography"),
    ("编织", "Knitting"), ("健康养生", "Healthy living"),
]  # fmt: skip
CLASS_SLOTS = [("09:00", "10:30"), ("14:00", "15:30"), ("19:00", "20:30")]
CLASS_ROOMS = ["classroom", "e-learning", "culture-sports"]
PARTNERS = [f"partner-{n}" for n in range(1, 12)]
DROP_IN_ROOMS = {"book-bar": 30, "e-learning": 15, "culture-sports": 20, "counselling": 5, "classroom": 8,
                 "multi-purpose": 8, "parent-child": 10, "meeting": 4}  # fmt: skip
ROOM_PURPOSE = {"book-bar": "reading", "counselling": "counselling", "culture-sports": "culture",
                "e-learning": "class", "parent-child": "activity"}  # fmt: skip


def ms_of(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * H + int(m) * M


@dataclass
class Day:
    day: dt.date
    moves: list[tuple[int, str, str, int]] = field(
        default_factory=list
    )  # (ms from local midnight, device, dir, n)
    checkins: list[dict[str, Any]] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    def t(self, ms: int) -> int:
        """A millisecond not used yet that day (every event has its own instant: the order is never a tie)."""
        ms = int(ms)
        while ms in self.used:
            ms += 1
        self.used.add(ms)
        return ms


@dataclass
class Year:
    site: SiteConfig
    items: list[dict[str, Any]]
    events: list[tuple[dt.datetime, Incoming]]  # (when it happened, UTC; message), in time order
    days: dict[dt.date, dict[str, Any]]  # truth per open day
    item_truth: dict[str, dict[str, int]]

    @property
    def open_days(self) -> list[dt.date]:
        return sorted(d for d, t in self.days.items() if t["visits"] > 0)


def is_open(day: dt.date) -> bool:
    return day.weekday() != 0 and (day.month, day.day) not in HOLIDAYS


def make_schedule(rng: random.Random, year: int) -> list[dict[str, Any]]:
    days = [dt.date(year, 1, 1) + dt.timedelta(days=n) for n in range(366 if year % 4 == 0 else 365)]
    days = [d for d in days if is_open(d) and d.year == year]
    items: list[dict[str, Any]] = []

    def add(kind, title, title_en, room, day, start, end, partner=None):
        items.append({"id": f"{kind[:2]}-{len(items):04d}", "title": title, "title_en": title_en, "kind": kind,
                      "room": room, "date": day.isoformat(), "start": start, "end": end, "partner": partner})  # fmt: skip

    for n, (title, title_en) in enumerate(COURSES):
        weekday, slot, room = 1 + n % 6, CLASS_SLOTS[n % 3], CLASS_ROOMS[(n // 3) % 3]
        for d in days:
            if d.weekday() == weekday:
                add("class", title, title_en, room, d, *slot)
    weekends = [d for d in days if d.weekday() >= 5]
    for d in sorted(rng.sample(weekends, 55)):
        add("workshop", "亲子手工坊", "Parent-child craft workshop", "parent-child", d, "10:00", "11:30")
    for d in sorted(rng.sample(days, 95)):
        add("themed", "主题活动", "Themed activity", "multi-purpose", d, "14:30", "16:30")
    for n, d in enumerate(sorted(rng.sample(days, 20))):
        add(
            "joint",
            "共建活动",
            "Joint event",
            "multi-purpose",
            d,
            "09:30",
            "11:30",
            PARTNERS[n % len(PARTNERS)],
        )
    for d in sorted(rng.sample(days, 24)):
        add("activity", "主题党日", "Party day", "meeting", d, "15:00", "16:30")
    return items


def simulate_day(rng: random.Random, day: dt.date, items: list[dict[str, Any]]) -> Day:
    sim = Day(day)

    def cross(ms: int, device: str, direction: str, n: int) -> int:
        ms = sim.t(ms)
        sim.moves.append((ms, device, direction, n))
        return ms

    def group_size() -> int:
        return rng.choices((1, 2, 3, 4), (30, 35, 20, 15))[0]

    def visit(arrive, size, stops, leave_after, checkin=None):
        """Enter, walk through rooms [(room, minutes)], leave; optionally check in at the kiosk."""
        now = cross(arrive, "door-main", "in", size)
        if checkin is not None and rng.random() < checkin["p"]:
            at = sim.t(now + rng.randint(20_000, 90_000))
            member = member_code.make(20_240_000 + rng.randint(1, 900)) if rng.random() < 0.2 else None
            sim.checkins.append(
                {"ms": at, "member": member, **{k: v for k, v in checkin.items() if k != "p"}}
            )
        now += rng.randint(1, 4) * M + rng.randint(0, 59_999)
        for room, stay in stops:
            now = cross(now, f"door-{room}", "in", size)
            now = cross(now + stay, f"door-{room}", "out", size)
            now += rng.randint(1, 5) * M + rng.randint(0, 59_999)
        cross(now + leave_after, "door-main", "out", size)

    participants = 0
    for item in (i for i in items if i["date"] == day.isoformat()):
        kind, room = item["kind"], item["room"]
        start, end = ms_of(item["start"]), ms_of(item["end"])
        want = {"class": (12, 25), "workshop": (18, 28), "themed": (30, 55), "joint": (40, 58),
                "activity": (20, 35)}[kind]  # fmt: skip
        target = rng.randint(*want)
        came = 0
        while came < target:
            if kind == "workshop":
                adults, children = 1, rng.choice((1, 1, 2))
            else:
                size = min(group_size(), target - came)
                adults, children = size, 0
            size = adults + children
            came += size
            late = rng.random() < 0.1
            arrive = start + rng.randint(1, 18) * M if late else start - rng.randint(5, 14) * M
            # Enters the room within the counting window (15 min before the start) and stays to the end.
            enter = max(arrive + rng.randint(30_000, 90_000), start - 14 * M)
            stay = end + rng.randint(0, 5) * M - enter
            purpose = "class" if kind == "class" else "activity"
            checkin = {
                "p": 0.85,
                "purpose": purpose,
                "adults": adults,
                "children": children,
                "activity": item["id"],
            }
            now = cross(arrive, "door-main", "in", size)
            if rng.random() < checkin["p"]:
                member = member_code.make(20_240_000 + rng.randint(1, 900)) if rng.random() < 0.2 else None
                at = sim.t(now + rng.randint(10_000, 25_000))
                sim.checkins.append(
                    {"ms": at, "member": member, **{k: v for k, v in checkin.items() if k != "p"}}
                )
            now = cross(max(enter, now + 26_000), f"door-{room}", "in", size)
            now = cross(now + max(stay, 10 * M), f"door-{room}", "out", size)
            cross(now + rng.randint(1, 10) * M, "door-main", "out", size)
        participants += came
    target = int(rng.gauss(300, 30) * (1.1 if day.weekday() >= 5 else 1.0))
    people = participants
    while people < target:
        size = group_size()
        people += size
        arrive = ms_of("08:30") + rng.randint(0, 11 * H + 30 * M)
        children = 1 if size > 1 and rng.random() < 0.15 else 0
        if rng.random() < 0.4:
            purpose = rng.choices(("affairs", "other"), (4, 1))[0]
            stops = []
        else:
            room = rng.choices(list(DROP_IN_ROOMS), list(DROP_IN_ROOMS.values()))[0]
            purpose = ROOM_PURPOSE.get(room, "other")
            if room == "counselling":
                size, children = 1, 0
            stops = [(room, rng.randint(15, 90) * M + rng.randint(0, 59_999))]
        checkin = {
            "p": 0.45,
            "purpose": purpose,
            "adults": size - children,
            "children": children,
            "activity": None,
        }
        visit(arrive, size, stops, rng.randint(2, 20) * M, checkin)
    if (
        rng.random() < 0.04
    ):  # a meeting that runs past midnight: still the same business day (day starts 04:00)
        visit(ms_of("20:40"), 2, [("meeting", 3 * H + rng.randint(0, 59) * M)], rng.randint(1, 30) * M)
    return sim


def truth_of_day(sim: Day, site: SiteConfig, items: list[dict[str, Any]], to_utc) -> dict[str, Any]:
    """Figures of a day from its movements, tracked person by person in time order."""
    doors = {d.device: d for d in site.doors}
    occ = {r.id: 0 for r in site.rooms}
    rooms = {r.id: {"entries": 0, "exits": 0, "peak": 0, "peak_at": None, "occupied_ms": 0, "hourly": [0] * 24}
             for r in site.rooms}  # fmt: skip
    since: dict[str, int] = {}
    visits, visits_hourly = 0, [0] * 24
    slots = [
        (i, i["room"], ms_of(i["start"]) - 15 * M, ms_of(i["end"]))
        for i in items
        if i["date"] == sim.day.isoformat()
    ]
    door_entries = {i["id"]: 0 for i, *_ in slots}
    for ms, device, direction, n in sorted(sim.moves):
        door = doors[device]
        src, dst = (door.outside, door.inside) if direction == "in" else (door.inside, door.outside)
        hour = (ms // H) % 24
        if src == "outdoors":
            visits += n
            visits_hourly[hour] += n
        if src != "outdoors":
            occ[src] -= n
            assert occ[src] >= 0
            rooms[src]["exits"] += n
            if occ[src] == 0:
                rooms[src]["occupied_ms"] += ms - since.pop(src)
        if dst != "outdoors":
            if occ[dst] == 0:
                since[dst] = ms
            occ[dst] += n
            rooms[dst]["entries"] += n
            rooms[dst]["hourly"][hour] += n
            if occ[dst] > rooms[dst]["peak"]:
                rooms[dst]["peak"], rooms[dst]["peak_at"] = occ[dst], format_ts(to_utc(sim.day, ms))
            for item, room, lo, hi in slots:
                if room == dst and lo <= ms < hi:
                    door_entries[item["id"]] += n
    assert not any(occ.values()), "everyone leaves by the end of the day"
    purposes: dict[str, list[int]] = {}
    acts: dict[str, list[int]] = {}
    for c in sim.checkins:
        purposes.setdefault(c["purpose"], [0, 0])
        purposes[c["purpose"]][0] += 1
        purposes[c["purpose"]][1] += c["adults"] + c["children"]
        if c["activity"]:
            a = acts.setdefault(c["activity"], [0, 0, 0])
            a[0], a[1], a[2] = a[0] + 1, a[1] + c["adults"], a[2] + c["children"]
    return {
        "visits": visits,
        "visits_hourly": visits_hourly,
        "rooms": rooms,
        "checkins": len(sim.checkins),
        "adults": sum(c["adults"] for c in sim.checkins),
        "children": sum(c["children"] for c in sim.checkins),
        "identified": sum(1 for c in sim.checkins if c["member"]),
        "by_purpose": {p: v[0] for p, v in purposes.items()},
        "people_by_purpose": {p: v[1] for p, v in purposes.items()},
        "activities": {i: {"checkins": a[0], "adults": a[1], "children": a[2],
                           "door_entries": door_entries.get(i, 0)} for i, a in acts.items()}
        | {i: {"checkins": 0, "adults": 0, "children": 0, "door_entries": n} for i, n in door_entries.items()
           if i not in acts},
    }  # fmt: skip


def generate(site: SiteConfig, year: int = YEAR, seed: int = 2025) -> Year:
    rng = random.Random(seed)
    items = make_schedule(rng, year)
    tz = site.timezone
    midnight: dict[dt.date, dt.datetime] = {}

    def to_utc(day: dt.date, ms: int) -> dt.datetime:
        if day not in midnight:
            midnight[day] = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
        return (midnight[day] + dt.timedelta(milliseconds=ms)).astimezone(dt.UTC)

    seqs: dict[str, int] = {}
    events: list[tuple[dt.datetime, Incoming]] = []
    days: dict[dt.date, dict[str, Any]] = {}
    item_truth: dict[str, dict[str, int]] = {}
    day = dt.date(year, 1, 1)
    while day.year == year:
        if is_open(day):
            sim = simulate_day(rng, day, items)
            truth = days[day] = truth_of_day(sim, site, items, to_utc)
            item_truth.update(truth["activities"])
            timeline = [(ms, d, "crossing", (direction, n)) for ms, d, direction, n in sim.moves]
            timeline += [(c["ms"], "kiosk-hall", "checkin", c) for c in sim.checkins]
            for ms, device, _kind, body in sorted(timeline, key=lambda x: x[0]):
                seq = seqs[device] = seqs.get(device, -1) + 1
                ts = to_utc(day, ms)
                if device == "kiosk-hall":
                    event = Checkin(id=f"{device}-{seq}", seq=seq, ts=ts, purpose=body["purpose"],
                                    adults=body["adults"], children=body["children"], activity=body["activity"],
                                    member=body["member"])  # fmt: skip
                else:
                    event = Crossing(id=f"{device}-{seq}", seq=seq, ts=ts, direction=body[0], count=body[1])
                events.append(
                    (ts, Incoming(topics.device_event(site.id, device, site.prefix), event.encode(), qos=1))
                )
        day += dt.timedelta(days=1)
    return Year(site, items, events, days, item_truth)


def deliveries(
    year: Year, late: float = 0.0, twice: float = 0.0, seed: int = 1
) -> list[tuple[dt.datetime, Incoming]]:
    """When each message reaches the server: 2 s after it happened, or (a share `late`) 1-5 days later; a share
    `twice` is delivered a second time up to 3 days later (QoS 1 redelivery, an outbox replay)."""
    rng = random.Random(seed)
    out = []
    for ts, msg in year.events:
        delay = dt.timedelta(days=rng.uniform(1, 5)) if rng.random() < late else dt.timedelta(seconds=2)
        out.append((ts + delay, msg))
        if rng.random() < twice:
            out.append((ts + delay + dt.timedelta(seconds=rng.uniform(1, 3 * 86400)), msg))
    out.sort(key=lambda x: x[0])
    return out


def feed(site, store, delivered, batch: int = 5000, rollup: bool = True) -> int:
    """Through `Ingestor.process` in batches, as production does, with `rollup_pending` after every batch;
    returns how many days were (re)counted."""
    from footfall.server.ingest import Ingestor
    from footfall.server.reports import rollup_pending

    ingestor = Ingestor(site, store)
    counted = 0
    for start in range(0, len(delivered), batch):
        chunk = delivered[start : start + batch]
        now = chunk[-1][0]
        ingestor.process([m for _, m in chunk], now)
        if rollup:
            counted += len(rollup_pending(site, store, now))
    return counted
