"""Ingest against a real Mosquitto, fed by Debian's mosquitto_pub (not our code), read back over the HTTP API."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import urllib.request

import pytest

from footfall.clock import format_ts, utcnow
from footfall.demo.broker import free_port
from footfall.site import load_site
from tests.conftest import footfall_env, wait_server_online, wait_until

pytestmark = pytest.mark.integration

SITE = "dongsi"


def pub(broker, device: str, payload: bytes | str, kind: str = "event") -> None:
    data = payload.encode() if isinstance(payload, str) else payload
    subprocess.run(
        [
            shutil.which("mosquitto_pub") or "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-t",
            f"footfall/{SITE}/device/{device}/{kind}",
            "-s",
        ],
        input=data,
        check=True,
        timeout=10,
    )


def crossing(event_id: str, seq: int, direction: str = "in", **extra) -> str:
    body = {
        "v": 1,
        "id": event_id,
        "seq": seq,
        "ts": format_ts(utcnow()),
        "type": "crossing",
        "direction": direction,
        **extra,
    }
    return json.dumps(body)


def api(port: int, path: str, token: str):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def make_token(site_file, env, role: str = "viewer") -> str:
    out = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "token", "create", "-c", str(site_file), "--role", role],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_mosquitto_pub_events_bad_input_and_duplicates(broker, site_file, procs, tmp_path):
    web_port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}")
    ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    web = procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    db = tmp_path / "data" / "footfall.db"
    wait_until(lambda: db.exists() and api_ready(web_port), 20, message="web up")
    token = make_token(site_file, env)
    wait_server_online(broker)
    # Before any device has sent a status, every device of the site file is listed, its state unknown and its
    # last_seen, queue, health and version null (docs/api.md "Devices").
    listed = {d["id"]: d for d in api(web_port, "/api/v1/devices", token)}
    assert set(listed) == {d.id for d in load_site(site_file).devices}
    assert {(d["state"], d["last_seen"], d["queue"], d["health"], d["version"]) for d in listed.values()} == {
        ("unknown", None, None, None, None)
    }

    # Five people in through the main door, one of them delivered twice; two on into the book bar, one back out.
    for seq in range(5):
        pub(broker, "door-main", crossing(f"main-{seq}", seq))
    pub(broker, "door-main", crossing("main-3", 3))
    pub(broker, "door-book-bar", crossing("bb-0", 0, count=2))
    pub(broker, "door-book-bar", crossing("bb-1", 1, direction="out"))
    # A check-in from the kiosk.
    pub(
        broker,
        "kiosk-hall",
        json.dumps(
            {
                "v": 1,
                "id": "k-0",
                "seq": 0,
                "ts": format_ts(utcnow()),
                "type": "checkin",
                "purpose": "reading",
                "adults": 1,
                "children": 1,
            }
        ),
    )
    # Bad input, each for its own reason.
    bad = {
        "not json": ("door-main", b"\xff\xfe not json at all"),
        "wrong types": (
            "door-main",
            json.dumps(
                {
                    "v": 1,
                    "id": "x",
                    "seq": "seven",
                    "ts": format_ts(utcnow()),
                    "type": "crossing",
                    "direction": "in",
                }
            ),
        ),
        "unknown device": ("door-nowhere", crossing("n-0", 0)),
        "oversize": ("door-main", crossing("big", 99, pad="x" * 5000)),
        "unknown type": (
            "door-main",
            json.dumps({"v": 1, "id": "t", "seq": 9, "ts": format_ts(utcnow()), "type": "teleport"}),
        ),
        "wrong direction": ("door-main", crossing("d", 10, direction="sideways")),
    }
    for device, payload in bad.values():
        pub(broker, device, payload)

    def stored():
        with sqlite3.connect(db) as conn:
            return (
                conn.execute("select count(*) from events").fetchone()[0],
                conn.execute("select count(*) from dead_letters").fetchone()[0],
            )

    wait_until(lambda: stored() == (8, len(bad)), 15, message="8 events and every bad message stored")
    rooms = {r["room"]: r for r in api(web_port, "/api/v1/rooms", token)}
    # Five from outdoors (the duplicate counted once) and one back from the book bar; two went on into it.
    assert (rooms["hall"]["entries_today"], rooms["hall"]["exits_today"]) == (6, 2)
    assert rooms["hall"]["occupancy"] == 5 - 2 + 1
    assert rooms["book-bar"]["occupancy"] == 1
    assert rooms["book-bar"]["entries_today"] == 2 and rooms["book-bar"]["exits_today"] == 1
    with sqlite3.connect(db) as conn:
        reasons = [r[0] for r in conn.execute("select reason from dead_letters order by pk")]
        topics = [r[0] for r in conn.execute("select topic from dead_letters order by pk")]
    assert any("payload: not JSON" in r for r in reasons)
    assert any(r.startswith("seq:") for r in reasons)
    assert any("unknown device" in r for r in reasons)
    assert any("more than 4096" in r for r in reasons)
    assert any(r.startswith("type:") for r in reasons)
    assert any(r.startswith("direction:") for r in reasons)
    assert "footfall/dongsi/device/door-nowhere/event" in topics
    # Ingest kept running and still counts.
    assert ingest.alive()
    pub(broker, "door-main", crossing("main-after", 50))
    wait_until(
        lambda: {r["room"]: r for r in api(web_port, "/api/v1/rooms", token)}["hall"]["entries_today"] == 7,
        10,
    )
    assert web.alive()

    # A staff correction through the API ends up as the broker's retained state (ingest republishes it).
    staff = make_token(site_file, env, "staff")
    body = json.dumps({"occupancy": 2, "reason": "counted by hand"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/api/v1/rooms/hall/adjust",
        data=body,
        headers={"Authorization": f"Bearer {staff}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["occupancy"] == 2

    def retained_hall() -> dict:
        out = subprocess.run(
            [shutil.which("mosquitto_sub") or "mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-C", "1",
             "-W", "5", "-t", "footfall/dongsi/room/hall/state"],
            capture_output=True, timeout=10,
        )  # fmt: skip
        return json.loads(out.stdout)

    wait_until(lambda: retained_hall()["occupancy"] == 2, 10, message="corrected state retained")


def api_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except Exception:  # noqa: BLE001 - not up yet
        return False
