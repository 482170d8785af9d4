"""The hostile tester's poison messages, published with Debian's mosquitto_pub to a real Mosquitto, against real
ingest and web processes (#10 must-show): then 20 valid crossings are all counted, every bad message is
dead-lettered, /api/v1/devices stays valid JSON. Also retained, across restarts of both processes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import urllib.request

import pytest

from footfall.demo.broker import free_port
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_ingest_guard import POISON
from tests.test_ingest_mqtt import api_ready, crossing, make_token

pytestmark = pytest.mark.integration


def pub(broker, topic: str, payload: bytes, retain: bool = False) -> None:
    args = ["-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", topic, "-s"]
    subprocess.run(
        [shutil.which("mosquitto_pub") or "mosquitto_pub", *args, *(["-r"] if retain else [])],
        input=payload,
        check=True,
        timeout=10,
    )


def strict_json(text: str):
    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constant)


def get(port: int, path: str, token: str) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def counts(db) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("select count(*) from events").fetchone()[0],
            conn.execute("select count(*) from dead_letters").fetchone()[0],
        )


def start_server(procs, site_file, env):
    ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    web = procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    return ingest, web


def publish_crossings(broker, start: int, n: int = 20) -> None:
    for seq in range(start, start + n):
        pub(broker, "footfall/dongsi/device/door-main/event", crossing(f"ok-{seq}", seq).encode())


def test_poison_then_20_crossings_over_mosquitto(broker, site_file, procs, tmp_path):
    web_port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}")
    ingest, web = start_server(procs, site_file, env)
    db = tmp_path / "data" / "footfall.db"
    wait_until(lambda: db.exists() and api_ready(web_port), 30, message="web healthy")
    wait_server_online(broker)
    token = make_token(site_file, env)

    for topic, payload in POISON.values():
        pub(broker, topic, payload)
    publish_crossings(broker, 0)
    wait_until(
        lambda: counts(db) == (20, len(POISON)), 20, message="20 events and every poison dead-lettered"
    )
    rooms = {r["room"]: r for r in strict_json(get(web_port, "/api/v1/rooms", token))}
    assert rooms["hall"]["entries_today"] == 20
    devices = strict_json(get(web_port, "/api/v1/devices", token))
    assert {d["id"] for d in devices} >= {"door-main", "kiosk-hall"}
    with sqlite3.connect(db) as conn:
        topics = {r[0] for r in conn.execute("select topic from dead_letters")}
    assert topics == {topic for topic, _ in POISON.values()}
    assert ingest.alive() and web.alive() and api_ready(web_port)


def test_retained_poison_survives_restarts_of_ingest_and_web(broker, site_file, procs, tmp_path):
    # Retained before anything runs: delivered to ingest and web on every subscribe.
    statuses = {name: v for name, v in POISON.items() if v[0].endswith("/status")}
    for topic, payload in statuses.values():
        pub(broker, topic, payload, retain=True)
    pub(
        broker,
        "footfall/dongsi/room/hall/state",
        b'{"room":"hall","occupancy":NaN,"x":' + b"[" * 2000,
        retain=True,
    )
    pub(broker, "footfall/dongsi/alerts", b"[" * 3000, retain=True)
    web_port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}")
    db = tmp_path / "data" / "footfall.db"
    token = None
    for round_ in range(2):  # the second round is a restart: the retained poison comes again
        ingest, web = start_server(procs, site_file, env)
        wait_until(
            lambda: db.exists() and api_ready(web_port), 30, message="web healthy despite retained poison"
        )
        wait_server_online(broker)
        token = token or make_token(site_file, env)
        publish_crossings(broker, 20 * round_)
        wait_until(lambda n=20 * (round_ + 1): counts(db)[0] == n, 20, message="crossings counted")
        # The last poison status is the retained one per topic: the same topic twice keeps only the newest.
        assert counts(db)[1] >= round_ + 1
        strict_json(get(web_port, "/api/v1/devices", token))
        assert ingest.alive() and web.alive()
        ingest.stop()
        web.stop()
        assert ingest.p.returncode == 0 and web.p.returncode == 0
