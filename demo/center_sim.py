"""A whole center's day of visitors, for `footfall demo`: arrivals peaking in the morning and afternoon, visitors
going on into rooms, activities bringing groups of 20-40 into one room, and check-ins at the hall kiosk.

`plan_day` is pure (seeded); `run_center` drives one simulated break-beam counter per door (gpiozero mock pins,
the real detector and outbox) and a kiosk, in accelerated time.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.request
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from footfall.site import OUTDOORS, SiteConfig

logger = logging.getLogger(__name__)

HOUR = 3600.0
# Which rooms serve which purpose, by the reference center's room ids; unknown ids fall back to any room.
PURPOSE_ROOMS = {
    "reading": ("book-bar",),
    "class": ("classroom", "e-learning"),
    "counselling": ("counselling",),
    "culture": ("culture-sports",),
    "activity": ("multi-purpose", "meeting"),
    "affairs": (),
    "other": (),
}
PURPOSE_WEIGHTS = {
    "affairs": 30,
    "reading": 20,
    "class": 10,
    "culture": 12,
    "activity": 8,
    "counselling": 3,
    "other": 7,
}


@dataclass(frozen=True, order=True)
class Move:
    t: float  # seconds since the simulated day's start
    device: str  # the counter at the door
    direction: str  # in | out (as that door counts)


@dataclass(frozen=True, order=True)
class Visit:
    t: float
    purpose: str
    adults: int
    children: int


@dataclass(frozen=True)
class DayPlan:
    moves: list[Move]
    checkins: list[Visit]
    visits: int  # people entering the building


def plan_day(site: SiteConfig, seed: int, visits: int = 300, open_hours: float = 12.0) -> DayPlan:
    """People and groups through the site's doors over `open_hours` (t = 0 is opening time)."""
    rng = random.Random(seed)
    entrance = next((d for d in site.doors if d.outside == OUTDOORS), None)
    if entrance is None:
        return DayPlan([], [], 0)
    room_doors = {d.inside: d for d in site.doors if d.outside == entrance.inside}
    moves: list[Move] = []
    checkins: list[Visit] = []

    def person(arrive: float, room: str | None, stay: float) -> float:
        moves.append(Move(arrive, entrance.device, "in"))
        t = arrive + rng.uniform(30, 120)
        if room in room_doors:
            door = room_doors[room]
            moves.append(Move(t, door.device, "in"))
            t += stay
            moves.append(Move(t, door.device, "out"))
            t += rng.uniform(20, 90)
        else:
            t += stay
        moves.append(Move(min(t, open_hours * HOUR - 1), entrance.device, "out"))
        return t

    # Activities and classes: groups of 20-40 arriving within minutes, leaving together.
    group_rooms = [
        r for r in ("multi-purpose", "classroom", "parent-child", "culture-sports") if r in room_doors
    ]
    people = 0
    for index, room in enumerate(group_rooms[:3]):
        start = rng.choice((1.5, 2.0, 6.0, 6.5, 8.0)) * HOUR + index * 0.25 * HOUR
        size = rng.randint(20, 40)
        purpose = "class" if room == "classroom" else "activity"
        for _ in range(size):
            person(start - rng.uniform(60, 900), room, rng.uniform(3600, 4200))
        checkins.append(
            Visit(start - 600, purpose, size - size // 4, size // 4 if room == "parent-child" else 0)
        )
        people += size
    # Everyone else: two peaks (mid-morning, mid-afternoon) over a low base.
    purposes, weights = zip(*PURPOSE_WEIGHTS.items(), strict=True)
    while people < visits:
        shape = rng.random()
        if shape < 0.4:
            arrive = rng.gauss(2.0 * HOUR, 0.8 * HOUR)
        elif shape < 0.75:
            arrive = rng.gauss(7.0 * HOUR, 1.0 * HOUR)
        else:
            arrive = rng.uniform(0.2 * HOUR, open_hours * HOUR - 0.5 * HOUR)
        arrive = min(max(arrive, 60.0), open_hours * HOUR - 1800)
        purpose = rng.choices(purposes, weights)[0]
        party = 2 if rng.random() < 0.15 else 1
        choices = [r for r in PURPOSE_ROOMS[purpose] if r in room_doors]
        room = rng.choice(choices) if choices else None
        stay = rng.uniform(1800, 5400) if room else rng.uniform(300, 1500)
        for _ in range(party):
            person(arrive + rng.uniform(0, 5), room, stay)
        if rng.random() < 0.7:
            checkins.append(Visit(arrive + 20, purpose, party, 0))
        people += party
    return DayPlan(sorted(moves), sorted(checkins), people)


def _tap_kiosk(url: str, visit: Visit) -> None:
    """Check in through the running kiosk app, as a visitor's taps would (with the CSRF token the kiosk gives
    local clients at GET /api/csrf, see docs/kiosk.md)."""
    body = json.dumps({"purpose": visit.purpose, "adults": visit.adults, "children": visit.children}).encode()
    try:
        with urllib.request.urlopen(f"{url}/api/csrf", timeout=5) as resp:
            token = json.loads(resp.read())["token"]
        headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
        with urllib.request.urlopen(urllib.request.Request(f"{url}/api/checkin", body, headers), timeout=5):
            pass
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("kiosk check-in failed: %s", exc)


def _emit_checkin(kiosk, visit: Visit) -> None:
    from footfall.messages import Checkin

    if kiosk is not None:
        kiosk.emit(partial(Checkin, purpose=visit.purpose, adults=visit.adults, children=visit.children))


def run_center(
    site: SiteConfig,
    data_dir: Path,
    speed: float,
    seed: int,
    stop: threading.Event,
    mqtt_port: int,
    kiosk_url: str | None = None,
) -> None:
    """Play a day: each door's crossings on its own mock pins and detector; check-ins through the kiosk app at
    `kiosk_url` (as taps would), or from a simulated kiosk device when there is none."""
    from gpiozero.pins.mock import MockFactory

    from footfall.config import validate
    from footfall.counter.app import CounterApp
    from footfall.counter.config import COUNTER_SCHEMA, CounterConfig
    from footfall.counter.simulate import VisitorModel, drive_pins
    from footfall.edge import EdgeRuntime, EdgeSettings
    from footfall.link import LinkSettings

    plan = plan_day(site, seed)
    logger.info(
        "simulated day: %d visits, %d door crossings, %d check-ins",
        plan.visits,
        len(plan.moves),
        len(plan.checkins),
    )
    mqtt = {**site.mqtt, "port": mqtt_port}
    start = time.monotonic()
    threads = []
    apps = []
    for door in site.doors:
        raw = {
            "device": {"id": door.device, "site": site.id, "clock": "synced", "data_dir": str(data_dir)},
            "mqtt": {k: v for k, v in mqtt.items() if k != "client_id" and v is not None},
        }
        conf = validate(raw, COUNTER_SCHEMA, f"<demo {door.device}>")
        config = CounterConfig(
            "<demo>", conf["device"], conf["mqtt"], conf["outbox"], conf["beam"], conf["led"], conf["camera"]
        )
        factory = MockFactory()
        app = CounterApp(config, pin_factory=factory).start()
        apps.append(app)
        schedule = [(m.t / speed, m.direction) for m in plan.moves if m.device == door.device]
        thread = threading.Thread(
            target=_play_door,
            name=f"door-{door.id}",
            daemon=True,
            args=(app, factory, schedule, start, stop, VisitorModel(seed), drive_pins),
        )
        thread.start()
        threads.append(thread)
    kiosk = None
    if kiosk_url is not None:
        checkin = partial(_tap_kiosk, kiosk_url)
    else:
        kiosk_id = next((d.id for d in site.devices if d.kind == "kiosk"), None)
        if kiosk_id is not None:
            kiosk = EdgeRuntime(
                EdgeSettings(
                    site=site.id,
                    device=kiosk_id,
                    kind="kiosk",
                    clock="synced",
                    outbox_path=str(data_dir / f"outbox-{kiosk_id}.db"),
                    link=LinkSettings.from_config(mqtt),
                    prefix=site.prefix,
                )
            ).start()
        checkin = partial(_emit_checkin, kiosk)
    for visit in plan.checkins:
        if stop.wait(max(0.0, start + visit.t / speed - time.monotonic())):
            break
        checkin(visit)
    stop.wait()
    for app in apps:
        app.stop()
    if kiosk is not None:
        kiosk.stop()


class _Stopped(Exception):
    pass


def _play_door(app, factory, schedule, start, stop, model, drive_pins) -> None:
    """Replay the door's crossings in wall time. Each passage takes its real ~1 s whatever the speed-up, so the
    detector sees real beam timings; people who would collide queue up or tailgate, as at a real door."""
    if not schedule:
        return
    pin_a, pin_b = factory.pin(app.config.beam["pin_a"]), factory.pin(app.config.beam["pin_b"])
    edges = model.edges_for(schedule)

    def nap(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    try:
        nap(max(0.0, start + edges[0].t - time.monotonic()))
        drive_pins(pin_a, pin_b, edges, sleep=nap)
    except _Stopped:
        pass
