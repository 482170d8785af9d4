"""A whole center's day of visitors, for `footfall demo`: arrivals peaking in the morning and afternoon, visitors
going on into rooms, activities bringing groups of 20-40 into one room, and check-ins at the hall kiosk.

People move like people: each one comes in through the main door, may walk on into one room and back, and leaves
through the main door before closing; nobody crosses a room's door before their crossing of the main door has
completed. `plan_day` is pure (seeded); `door_edges` turns the plan into each door's beam edges (in simulated
seconds) and `run_center` plays them on one simulated break-beam counter per door (gpiozero mock pins, the real
detector and outbox), while the simulated visitors check in through the real kiosk app's HTTP endpoints, as taps
would. The demo runs no MQTT client of its own for the kiosk: the kiosk app is the only one with its id.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import defaultdict
from dataclasses import dataclass
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
WALK_S = (20.0, 90.0)  # seconds from one door to the next
CLOSING_MARGIN_S = 60.0  # the last person is out this long before closing
ORDER_GAP_S = 0.01  # wall seconds between a person's crossing being counted and their next one starting


@dataclass(frozen=True, order=True)
class Move:
    t: float  # seconds since the simulated day's start (when the person wants to cross)
    device: str  # the counter at the door
    direction: str  # in | out (as that door counts)
    person: int = 0


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
    open_hours: float = 12.0

    @property
    def closing(self) -> float:
        return self.open_hours * HOUR


def plan_day(site: SiteConfig, seed: int, visits: int = 300, open_hours: float = 12.0) -> DayPlan:
    """People and groups through the site's doors over `open_hours` (t = 0 is opening time)."""
    rng = random.Random(seed)
    entrance = next((d for d in site.doors if d.outside == OUTDOORS), None)
    if entrance is None:
        return DayPlan([], [], 0, open_hours)
    room_doors = {d.inside: d for d in site.doors if d.outside == entrance.inside}
    closing = open_hours * HOUR - CLOSING_MARGIN_S
    moves: list[Move] = []
    checkins: list[Visit] = []
    numbers = itertools.count(1)

    def person(arrive: float, room: str | None, stay: float) -> None:
        who = next(numbers)
        leave = min(arrive + stay + rng.uniform(*WALK_S), closing - rng.uniform(0, 600))
        leave = max(leave, arrive + 2 * WALK_S[1])
        moves.append(Move(arrive, entrance.device, "in", who))
        if room in room_doors:
            enter_room = arrive + rng.uniform(*WALK_S)
            leave_room = min(enter_room + stay, leave - rng.uniform(*WALK_S))
            if leave_room > enter_room + WALK_S[0]:
                door = room_doors[room]
                moves.append(Move(enter_room, door.device, "in", who))
                moves.append(Move(leave_room, door.device, "out", who))
        moves.append(Move(leave, entrance.device, "out", who))

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
    return DayPlan(sorted(moves), sorted(checkins), people, open_hours)


@dataclass(frozen=True)
class Passage:
    """One person crossing one door: its beam edges in simulated seconds, and the person's crossing before it."""

    key: tuple[int, int]  # (person, step)
    after: tuple[int, int] | None  # the crossing that must have completed first (the same person's last)
    edges: list


def door_passages(plan: DayPlan, seed: int) -> dict[str, list[Passage]]:
    """Each door's passages for the plan, one after the other (a queue at a busy door waits its turn)."""
    from footfall.counter.simulate import VisitorModel

    steps: dict[int, int] = defaultdict(int)
    keyed = []
    for move in plan.moves:  # sorted by time, so a person's steps come in order
        keyed.append(((move.person, steps[move.person]), move))
        steps[move.person] += 1
    doors: dict[str, list[Passage]] = defaultdict(list)
    models: dict[str, VisitorModel] = {}
    free_at: dict[str, float] = {}
    for (person, step), move in keyed:
        model = models.setdefault(move.device, VisitorModel(zlib.crc32(f"{seed}/{move.device}".encode())))
        t0 = max(move.t, free_at.get(move.device, 0.0) + 2 * VisitorModel.MIN_GAP)
        edges = model.edges_for([(t0, move.direction)])
        free_at[move.device] = edges[-1].t
        after = (person, step - 1) if step else None
        doors[move.device].append(Passage((person, step), after, edges))
    return dict(doors)


class KioskVisitor:
    """Check in through the running kiosk app's HTTP API, as the kiosk page does after a visitor's taps."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        self.sent = self.failed = 0

    def _csrf(self) -> None:
        # The kiosk gives local clients its CSRF token at GET /api/csrf (docs/kiosk.md); an older kiosk has none.
        try:
            with urllib.request.urlopen(f"{self.url}/api/csrf", timeout=5) as response:
                answer = json.loads(response.read())
            self.headers[answer.get("header", "X-CSRF-Token")] = answer["token"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise

    def check_in(self, visit: Visit) -> bool:
        body = json.dumps({"purpose": visit.purpose, "adults": visit.adults, "children": visit.children})
        for attempt in range(2):
            try:
                if attempt or len(self.headers) == 1:
                    self._csrf()
                request = urllib.request.Request(f"{self.url}/api/checkin", body.encode(), self.headers)
                with urllib.request.urlopen(request, timeout=5) as response:
                    if json.loads(response.read()).get("status") == "ok":
                        self.sent += 1
                        return True
            except urllib.error.HTTPError as exc:
                if exc.code == 403 and not attempt:
                    continue  # the kiosk restarted with a new token
                logger.warning("kiosk check-in refused: %s %s", exc.code, exc.read()[:200])
                break
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("kiosk check-in failed: %s", exc)
                break
        self.failed += 1
        return False


class DoorClock:
    """A door counter's detector clock in simulated seconds: it follows the door's scripted edges, so the detector
    sees real beam timings however fast the day plays."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, t: float) -> None:
        self.t = max(self.t, t)


def run_center(
    site: SiteConfig,
    data_dir: Path,
    speed: float,
    seed: int,
    stop: threading.Event,
    mqtt_port: int,
    kiosk_url: str,
) -> None:
    """Play a day: each door's crossings on its own mock pins and detector, check-ins through the kiosk app at
    `kiosk_url`."""
    from gpiozero.pins.mock import MockFactory

    from footfall.config import MqttSettings
    from footfall.counter.app import CounterApp
    from footfall.counter.config import counter_config_from_dict

    plan = plan_day(site, seed)
    passages = door_passages(plan, seed)
    completed: dict[tuple[int, int], threading.Event] = defaultdict(threading.Event)
    logger.info(
        "simulated day: %d visits, %d door crossings, %d check-ins",
        plan.visits,
        len(plan.moves),
        len(plan.checkins),
    )
    # The site's broker settings a device also has (not ingest's client id or the web's account).
    device_keys = {f.name for f in dataclasses.fields(MqttSettings)}
    mqtt = {**{k: v for k, v in dataclasses.asdict(site.mqtt).items() if k in device_keys}, "port": mqtt_port}
    start = time.monotonic()
    threads, apps = [], []
    for door in site.doors:
        raw = {
            "device": {"id": door.device, "site": site.id, "clock": "synced", "data_dir": str(data_dir)},
            "mqtt": {k: v for k, v in mqtt.items() if v is not None},
        }
        config = counter_config_from_dict(raw, f"<demo {door.device}>")
        factory, clock = MockFactory(), DoorClock()
        app = CounterApp(config, pin_factory=factory, clock=clock).start()
        apps.append(app)
        thread = threading.Thread(
            target=_play_door,
            name=f"door-{door.id}",
            daemon=True,
            args=(app, factory, clock, passages.get(door.device, []), completed, start, speed, stop),
        )
        thread.start()
        threads.append(thread)
    kiosk = KioskVisitor(kiosk_url)
    for visit in plan.checkins:
        if stop.wait(max(0.0, start + visit.t / speed - time.monotonic())):
            break
        kiosk.check_in(visit)
    if not stop.is_set():
        logger.info("check-ins through the kiosk: %d sent, %d failed", kiosk.sent, kiosk.failed)
    stop.wait()
    for app in apps:
        app.stop()


def _play_door(app, factory, clock: DoorClock, passages, completed, start: float, speed: float, stop) -> None:
    """Apply the door's passages at their simulated times (wall time = simulated / speed), moving the detector's
    clock with their edges, so debounce and crossing timeouts see real beam timings. A passage starts only once
    the same person's previous crossing (at another door) has been counted: a busy machine that delays one door's
    thread can make a person late, never make them appear in a room before they came in."""
    pins = {"A": factory.pin(app.config.beam.pin_a), "B": factory.pin(app.config.beam.pin_b)}
    beam = app.config.beam
    active_low = not beam.active_high if beam.active_high is not None else beam.pull_up
    late = 0.0  # wall seconds this door runs behind its plan, from waiting on people
    for number, passage in enumerate(passages):
        if passage.after is not None:
            prior = completed[passage.after]
            while not prior.wait(0.2):
                if stop.is_set():
                    return
            late = max(late, time.monotonic() + ORDER_GAP_S - (start + passage.edges[0].t / speed))
        following = passages[number + 1].edges[0].t if number + 1 < len(passages) else math.inf
        for t, name, blocked in passage.edges:
            if stop.wait(max(0.0, start + late + t / speed - time.monotonic())):
                return
            clock.advance(t)
            if bool(blocked) == active_low:
                pins[name].drive_low()
            else:
                pins[name].drive_high()
            app.sensors.tick()
        # Let the last edge's debounce run out in simulated time, so the crossing is counted now.
        clock.advance(min(following - 1e-6, passage.edges[-1].t + 1.0))
        app.sensors.tick()
        completed[passage.key].set()
