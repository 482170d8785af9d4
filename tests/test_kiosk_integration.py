"""The kiosk against a real Mosquitto and the real ingest: check-ins reach the server's store and the day's counts by
purpose; with the broker down the UI keeps accepting check-ins, delivered exactly once when it is back; the retained
schedule and room states reach the kiosk, and the schedule survives a restart without the broker."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall import topics
from footfall.demo.broker import free_port
from footfall.kiosk.main import KioskService
from footfall.server.store import SqliteStore
from footfall.server.web.data import daily_report
from footfall.site import load_site
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_kiosk_app import make_config

pytestmark = pytest.mark.integration


def post(url: str, body: dict) -> tuple[int, dict]:
    """POST as a local client: with the CSRF token from GET /api/csrf (docs/kiosk.md)."""
    token = get(url.split("/api/")[0] + "/api/csrf")["token"]
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def stored(db_path) -> tuple[int, int]:
    """(rows, distinct ids) of kiosk check-ins in the server's events table."""
    try:
        with sqlite3.connect(db_path) as conn:
            return conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT id) FROM events WHERE device='kiosk-hall' AND type='checkin'"
            ).fetchone()
    except sqlite3.OperationalError:  # ingest has not created its tables yet
        return (-1, -1)


def device_known(db_path) -> bool:
    try:
        with sqlite3.connect(db_path) as conn:
            return conn.execute("SELECT COUNT(*) FROM devices WHERE id='kiosk-hall'").fetchone()[0] == 1
    except sqlite3.OperationalError:
        return False


def publish_retained(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


@pytest.fixture
def kiosk_service(tmp_path, broker):
    services = []

    def start() -> KioskService:
        service = KioskService(make_config(tmp_path, port=broker.port), port=0).start()
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop()


def test_checkins_reach_the_server_and_survive_a_broker_outage_exactly_once(
    tmp_path, broker, site_file, procs, kiosk_service
):
    procs("server", "-c", str(site_file), "--only", "ingest", env=footfall_env(broker), name="ingest")
    site = load_site(str(site_file))
    db = site.db_path
    kiosk = kiosk_service()
    wait_until(kiosk.kiosk.runtime.link.connected.is_set, message="kiosk connected")
    # Ingest has subscribed once it has stored the kiosk's retained status.
    wait_until(lambda: device_known(db), timeout=20, message="ingest subscribed")
    api = kiosk.url + "api/checkin"

    assert post(api, {"purpose": "reading", "adults": 2, "children": 1})[1]["status"] == "ok"
    wait_until(lambda: stored(db)[0] == 1, timeout=20, message="first check-in stored")
    with sqlite3.connect(db) as conn:
        day = conn.execute("SELECT day FROM events WHERE device='kiosk-hall'").fetchone()[0]
    report = daily_report(site, SqliteStore(db), dt.date.fromisoformat(day))
    assert report["checkins"]["by_purpose"]["reading"] == 1
    assert report["checkins"]["people"] == 3

    broker.stop()
    wait_until(lambda: not kiosk.kiosk.runtime.link.connected.is_set(), message="kiosk sees the broker gone")
    purposes = ["affairs", "class", "activity", "reading", "counselling", "culture", "other"]
    for n in range(50):
        status, body = post(api, {"purpose": purposes[n % 7], "adults": 1, "children": n % 2})
        assert status == 200 and body["status"] == "ok"
    assert kiosk.kiosk.runtime.outbox.queue == 50
    assert stored(db)[0] == 1

    broker.start()
    wait_until(lambda: stored(db)[0] >= 51, timeout=60, message="backlog delivered")
    wait_until(lambda: kiosk.kiosk.runtime.outbox.queue == 0, timeout=20, message="outbox emptied")
    assert stored(db) == (51, 51)  # every check-in once, no duplicates
    report = daily_report(site, SqliteStore(db), dt.date.fromisoformat(day))
    assert report["checkins"]["total"] == 51
    assert (
        report["checkins"]["by_purpose"]["affairs"] == 8 and report["checkins"]["by_purpose"]["reading"] == 8
    )


def test_retained_schedule_and_room_states_reach_the_kiosk_and_the_schedule_is_cached(broker, kiosk_service):
    kiosk = kiosk_service()
    day, _ = kiosk.kiosk.today()
    schedule = {
        "v": 1,
        "date": day.isoformat(),
        "items": [
            {
                "id": "opera",
                "title": "京剧赏析",
                "title_en": "Peking opera",
                "kind": "activity",
                "room": "multi-purpose",
                "start": "00:00",
                "end": "23:59",
                "capacity": 60,
            },
        ],
    }
    publish_retained(
        broker.port, topics.schedule("dongsi"), json.dumps(schedule, ensure_ascii=False).encode()
    )
    room = {
        "v": 1,
        "room": "multi-purpose",
        "name": "多功能活动室",
        "level": "busy",
        "occupancy": 50,
        "capacity": 60,
    }
    publish_retained(broker.port, topics.room_state("dongsi", "multi-purpose"), json.dumps(room).encode())
    state_url = kiosk.url + "api/state"
    wait_until(lambda: get(state_url)["items"] and get(state_url)["rooms"], message="schedule and rooms")
    state = get(state_url)
    assert state["items"][0]["id"] == "opera" and state["items"][0]["level"] == "busy"
    assert state["rooms"][0]["name"] == "多功能活动室"
    assert (
        post(kiosk.url + "api/checkin", {"purpose": "activity", "adults": 1, "activity": "opera"})[1][
            "status"
        ]
        == "ok"
    )

    # Offline restart: the broker is gone, the schedule comes from the kiosk's disk.
    kiosk.stop()
    broker.stop()
    again = kiosk_service()
    assert [i["id"] for i in get(again.url + "api/state")["items"]] == ["opera"]
    assert again.kiosk.runtime.outbox.queue in (0, 1)


def test_help_request_cleared_on_the_dashboard_clears_the_kiosk_over_the_broker(
    tmp_path, broker, site_file, procs, kiosk_service
):
    """Help at the kiosk -> an open alert on the server -> staff clear it through the web API -> ingest sends the
    kiosk `help-clear` over MQTT -> the kiosk no longer shows the request, and a new press sends a new one."""
    web_port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}")
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    wait_server_online(broker)
    token = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "token", "create", "-c", str(site_file), "--role", "staff"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    kiosk = kiosk_service()
    wait_until(kiosk.kiosk.runtime.link.connected.is_set, message="kiosk connected")
    wait_until(
        lambda: device_known(load_site(str(site_file)).db_path), timeout=20, message="ingest subscribed"
    )

    def api(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        request = urllib.request.Request(f"http://127.0.0.1:{web_port}{path}", data, headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def open_help() -> list[dict]:
        try:
            alerts = api("/api/v1/alerts")["alerts"]
        except OSError:  # the web process is still starting
            return []
        return [a for a in alerts if a["kind"] == "help" and a["device"] == "kiosk-hall"]

    assert post(kiosk.url + "api/help", {})[1]["status"] == "sent"
    assert get(kiosk.url + "api/state")["help_pending"] is True
    (alert,) = wait_until(open_help, timeout=20, message="the help alert on the server")
    api(f"/api/v1/alerts/{alert['id']}/clear", {})
    wait_until(
        lambda: get(kiosk.url + "api/state")["help_pending"] is False,
        timeout=20,
        message="the kiosk told over MQTT that staff cleared it",
    )
    assert open_help() == []
    assert post(kiosk.url + "api/help", {})[1]["status"] == "sent"  # not "already": it was cleared
    wait_until(lambda: len(open_help()) == 1, timeout=20, message="the new request on the server")


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_kiosk_healthz_tells_the_broker_link_and_the_pump(broker, kiosk_service):
    service = kiosk_service()
    wait_until(lambda: health(service.url)[0] == 200, 15, message="kiosk healthy")
    assert health(service.url)[1]["status"] == "ok"

    broker.stop()
    code, body = wait_until(
        lambda: (h := health(service.url))[0] == 503 and h, 15, message="503 on broker loss"
    )
    assert body["status"] == "unavailable" and "mqtt: not connected" in body["detail"]
    broker.start()
    wait_until(lambda: health(service.url)[0] == 200, 40, message="healthy after the broker is back")

    service.kiosk.runtime.stop()  # the outbox pump ends: nothing would be sent any more
    code, body = health(service.url)
    assert code == 503 and "outbox pump: not running" in body["detail"], body
