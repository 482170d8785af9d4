"""Live occupancy in event-time order, whatever order events arrive in; staff corrections keep their place in time;
the live peak, the daily API's and the report's come from one definition (docs/reports.md)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall.clock import day_bounds, format_ts, utcnow
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.occupancy import set_occupancy
from footfall.server.reports import report
from footfall.server.rooms import today
from footfall.server.store import SqliteStore
from footfall.server.web.data import daily_report
from footfall.site import load_site
from tests.conftest import footfall_env, wait_server_online, wait_until

PEOPLE = 20
SPACING_S = 10  # one person through the main door every 10 s ...
ON_AFTER_S = 25  # ... who goes on into the book bar 25 s later


def event(device: str, n: int, ts: dt.datetime, direction: str = "in") -> tuple[str, bytes]:
    body = {"v": 1, "id": f"{device}-{n}", "seq": n + 1, "ts": format_ts(ts), "type": "crossing"}
    return f"footfall/dongsi/device/{device}/event", json.dumps({**body, "direction": direction}).encode()


def walk(start: dt.datetime) -> tuple[list, list, int]:
    """Main-door and room-door events of 20 people, and the hall's true peak counted by hand."""
    main = [event("door-main", n, start + dt.timedelta(seconds=n * SPACING_S)) for n in range(PEOPLE)]
    room = [
        event("door-book-bar", n, start + dt.timedelta(seconds=n * SPACING_S + ON_AFTER_S))
        for n in range(PEOPLE)
    ]
    times = sorted(
        [(n * SPACING_S, +1) for n in range(PEOPLE)]
        + [(n * SPACING_S + ON_AFTER_S, -1) for n in range(PEOPLE)]
    )
    inside, peak = 0, 0
    for _t, step in times:
        inside += step
        peak = max(peak, inside)
    return main, room, peak


def day_start_for(site, now: dt.datetime) -> dt.datetime:
    """A start time inside today's business day, with the whole walk before now + a little."""
    start = max(
        now - dt.timedelta(minutes=6), day_bounds(today(site, now), site.timezone, site.day_starts)[0]
    )
    return start + dt.timedelta(seconds=1)


@pytest.fixture
def ingestor(site_file):
    site = load_site(site_file)
    store = SqliteStore(site.db_path)
    yield Ingestor(site, store)
    store.close()


def live(store, room: str) -> tuple[int, int]:
    counts = store.rooms_live()[room]
    return counts.occupancy, counts.peak


def test_late_main_door_backlog_recounts_the_hall_in_event_time(ingestor):
    site, store = ingestor.site, ingestor.store
    now = utcnow()
    main, room, true_peak = walk(day_start_for(site, now))
    ingestor.process([Incoming(t, p) for t, p in room], now)  # the room door's events arrive first
    assert live(store, "hall") == (0, 0)  # hall exits from an empty hall: absorbed, for now
    changed = ingestor.process([Incoming(t, p) for t, p in main[:7]], now)
    ingestor.process([Incoming(t, p) for t, p in main[7:]], now)  # the backlog comes in two batches
    assert {s["room"] for s in changed} >= {"hall"}  # recounted rooms are republished
    assert live(store, "hall") == (0, true_peak)
    assert live(store, "book-bar") == (PEOPLE, PEOPLE)
    hall = store.rooms_live()["hall"]
    assert (hall.entries, hall.exits, hall.raw_net, hall.corrected) == (PEOPLE, PEOPLE, 0, 0)
    day = today(site, now)
    api_hall = next(r for r in daily_report(site, store, day)["rooms"] if r["room"] == "hall")
    report_hall = next(r for r in report(site, store, "daily", day, now)["rooms"] if r["room"] == "hall")
    assert api_hall["peak"] == report_hall["peak"] == true_peak


def test_a_restarted_ingest_counts_on_from_the_stored_day(ingestor):
    """A room this process has not counted yet is read from the stored events: a restart loses nothing."""
    site, store = ingestor.site, ingestor.store
    now = utcnow()
    main, _room, _peak = walk(day_start_for(site, now))
    ingestor.process([Incoming(t, p) for t, p in main[:12]], now)
    restarted = Ingestor(site, store)
    restarted.process([Incoming(t, p) for t, p in main[12:]], now)
    hall = store.rooms_live()["hall"]
    assert (hall.entries, hall.occupancy, hall.peak) == (PEOPLE, PEOPLE, PEOPLE)


def test_a_staff_correction_keeps_its_place_in_time(ingestor):
    site, store = ingestor.site, ingestor.store
    now = utcnow()
    start = day_start_for(site, now)
    main, _room, _peak = walk(start)
    ingestor.process([Incoming(t, p) for t, p in main[:10]], now)  # 10 people in the hall
    # Staff count 4 people in the book bar's doorway as "in the hall": correct the hall to 14 at this moment.
    at = start + dt.timedelta(seconds=10 * SPACING_S - 1)  # before the 11th person comes in
    with store.transaction() as tx:
        before = tx.room_counts("hall")
        tx.put_room_counts("hall", set_occupancy(before, 14, at), now)
        tx.add_adjustment("hall", at, "staff", before.occupancy, 14, "counted by hand")
    # Late: 3 people who left through the main door before the correction (already in the staff's count).
    late = [event("door-main", 100 + n, start + dt.timedelta(seconds=95 + n), "out") for n in range(3)]
    ingestor.process([Incoming(t, p) for t, p in late], now)
    assert live(store, "hall")[0] == 14  # the correction, made after those exits, still holds
    ingestor.process([Incoming(t, p) for t, p in main[10:12]], now)
    assert live(store, "hall")[0] == 16
    day = today(site, now)
    hall = next(r for r in report(site, store, "daily", day, now)["rooms"] if r["room"] == "hall")
    assert hall["peak"] == live(store, "hall")[1] == 16


@pytest.mark.integration
def test_over_a_real_broker_hall_ends_at_zero_and_report_peak_is_the_live_peak(
    broker, site_file, procs, tmp_path
):
    env = footfall_env(broker)
    site = load_site(site_file)
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    wait_server_online(broker)
    now = utcnow()
    main, room, true_peak = walk(day_start_for(site, now))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for topic, payload in room + main:  # the main door's Pi was offline: its events come last
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    db = tmp_path / "data" / "footfall.db"

    def counts():
        with sqlite3.connect(db, timeout=30) as conn:
            return dict(conn.execute("select room, occupancy from rooms_live").fetchall()), conn.execute(
                "select count(*) from events"
            ).fetchone()[0]

    wait_until(lambda: counts()[1] == 2 * PEOPLE, 30, message="all 40 events stored")
    wait_until(lambda: counts()[0].get("hall") == 0, 10, message="the hall empties")
    assert counts()[0]["book-bar"] == PEOPLE
    with sqlite3.connect(db) as conn:
        live_peak = conn.execute("select peak from rooms_live where room='hall'").fetchone()[0]
    assert live_peak == true_peak
    out = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "report", "daily", "-c", str(site_file), "--lang", "en"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    hall_row = next(line.split("\t") for line in out.splitlines() if line.startswith("hall\t"))
    header = next(
        line.split("\t") for line in out.splitlines() if line.startswith("Room\t") or "\tPeak\t" in line
    )
    assert int(hall_row[header.index("Peak")]) == live_peak
