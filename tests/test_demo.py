"""`footfall demo`: a whole center on one machine, from one command, telling the truth: the simulated visitors check
in through the real kiosk app, nobody takes over another client's MQTT id, people only reach a room through the
main door, the building is empty at closing, and Ctrl-C stops everything it started."""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from footfall.demo.broker import free_port
from footfall.demo.center_sim import door_passages, plan_day
from footfall.demo.run import EXAMPLE_SITE
from footfall.site import load_site
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

SPEED = 600  # the 12-hour day in 72 s
SEED = 1
ENTRANCE = "door-main"
KIOSK = "kiosk-hall"


def snapshot(db_path) -> dict | None:
    """Live rooms and the main door's crossings, read in one SQLite transaction (one consistent moment)."""
    try:
        with sqlite3.connect(db_path, timeout=10) as db:
            db.execute("BEGIN")
            rooms = {r[0]: r[1:] for r in db.execute("SELECT room, occupancy, corrected FROM rooms_live")}
            main = dict(
                db.execute(
                    "SELECT direction, coalesce(sum(count), 0) FROM events WHERE device = ? GROUP BY direction",
                    (ENTRANCE,),
                ).fetchall()
            )
    except sqlite3.OperationalError:  # not created yet
        return None
    return {"rooms": rooms, "in": main.get("in", 0), "out": main.get("out", 0)}


def test_plan_moves_people_only_through_the_main_door_and_out_before_closing():
    site = load_site(EXAMPLE_SITE)
    plan = plan_day(site, SEED)
    entrance = {d.device for d in site.doors if d.outside == "outdoors"}
    by_person: dict[int, list] = {}
    for move in plan.moves:
        by_person.setdefault(move.person, []).append(move)
    assert len(by_person) == plan.visits
    for moves in by_person.values():
        assert (moves[0].device in entrance, moves[0].direction) == (True, "in")
        assert (moves[-1].device in entrance, moves[-1].direction) == (True, "out")
        assert moves[-1].t < plan.closing
    # Each door plays its passages one after another, each waiting on the same person's crossing before.
    passages = door_passages(plan, SEED)
    for door in passages.values():
        assert all(a.edges[-1].t < b.edges[0].t for a, b in zip(door, door[1:], strict=False))
        for passage in door:
            person, step = passage.key
            assert passage.after == ((person, step - 1) if step else None)
    assert max(p.edges[-1].t for door in passages.values() for p in door) < plan.closing


def test_demo_tells_the_truth_and_stops_on_ctrl_c(tmp_path):
    site = load_site(EXAMPLE_SITE)
    plan = plan_day(site, SEED)
    port = free_port()
    data = tmp_path / "demo"
    log = tmp_path / "demo.out"
    demo = subprocess.Popen(
        [sys.executable, "-m", "footfall.cli", "demo", "--speed", str(SPEED), "--port", str(port)]
        + ["--data-dir", str(data), "--seed", str(SEED)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    samples = []
    try:
        text = wait_until(
            lambda: "Press Ctrl-C" in log.read_text() and log.read_text(), 60, message="demo banner"
        )
        started = time.monotonic()
        assert f"http://127.0.0.1:{port}/" in text
        staff = re.search(r"login: staff / (\S+)", text)
        admin = re.search(r"admin: admin / (\S+)", text)
        assert staff and admin and staff.group(1) != admin.group(1)
        db_path = data / "server" / "footfall.db"
        with sqlite3.connect(db_path) as db:
            assert dict(db.execute("SELECT username, role FROM users")) == {
                "staff": "staff",
                "admin": "admin",
            }

        # Sample the live rooms through the whole day, and a little past closing.
        day_s = plan.closing / SPEED
        while time.monotonic() < started + day_s + 20:
            sample = snapshot(db_path)
            if sample is not None:
                sample["t"] = time.monotonic()
                samples.append(sample)
                everyone_left = sample["in"] == sample["out"] == plan.visits
                if everyone_left and not any(occ for occ, _ in sample["rooms"].values()):
                    break
            time.sleep(0.2)
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 5  # broker, ingest, web, kiosk, simulated doors
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(30)
    assert code == 0, log.read_text()[-3000:]
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    # At every sample, the rooms hold no more people than came in through the main door.
    assert len(samples) > 100
    in_rooms = [sum(occ for room, (occ, _) in s["rooms"].items() if room != "hall") for s in samples]
    for sample, people in zip(samples, in_rooms, strict=True):
        assert people <= sample["in"], sample

    # Nor more than are in the building, and no exit is absorbed by a room that is empty, but for a moment: each
    # door has its own outbox and link, so a visitor's exit through the main door may be stored just before their
    # exit from the room (one simulated minute is a tenth of a second here), until ingest puts the late one in its
    # place in event time. Such a moment must pass within 2 s.
    def truthful(j: int) -> bool:
        building = samples[j]["in"] - samples[j]["out"]
        return in_rooms[j] <= building and all(c == 0 for _, c in samples[j]["rooms"].values())

    for i, sample in enumerate(samples):
        if not truthful(i):
            later = [j for j in range(i + 1, len(samples)) if samples[j]["t"] - sample["t"] <= 2]
            assert any(truthful(j) for j in later), sample
    # Everyone who came in left: the building is empty at closing.
    closing = samples[-1]
    assert (closing["in"], closing["out"]) == (plan.visits, plan.visits)
    assert {room: occ for room, (occ, _) in closing["rooms"].items() if occ} == {}

    with sqlite3.connect(data / "server" / "footfall.db") as db:
        checkins = db.execute("SELECT device, seq FROM events WHERE type = 'checkin' ORDER BY seq").fetchall()
    # The real kiosk app's outbox sent every planned check-in: one device, its seqs 1..n, its outbox emptied by
    # ingest's confirmations; the simulator has no kiosk outbox of its own.
    assert checkins == [(KIOSK, n) for n in range(1, len(plan.checkins) + 1)]
    with sqlite3.connect(data / "kiosk" / "outbox.db") as outbox:
        assert outbox.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert list((data / "devices").glob("*kiosk*")) == []
    # The broker saw the kiosk connect, and never a second client with an id already connected.
    broker_log = next((data / "broker").glob("*.log")).read_text()
    # (Mosquitto logs a takeover as "Client <id> already connected, closing old connection.")
    assert broker_log.count(f" as footfall-dongsi-{KIOSK} (") == 1
    assert "already connected" not in broker_log


def test_demo_on_a_busy_port_says_so_in_one_line_before_any_url(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "footfall.cli", "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "http://" not in done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"port {port} is already in use" in line
