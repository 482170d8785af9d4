"""Ingest is the only publisher of retained room state, alerts and schedule: the web asks it on server/cmd.

Checked on a real Mosquitto that logs every PUBLISH with its client id, while staff clear an alert, add today's
schedule item and correct a room through the real web process.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request

import pytest

from footfall.clock import local_day, utcnow
from footfall.demo.broker import LocalBroker, free_port
from footfall.messages import Help
from footfall.site import load_site
from tests.conftest import footfall_env, wait_until
from tests.test_dashboard_browser import cli, healthy, watch_ingest_status
from tests.test_ingest_mqtt import pub

pytestmark = pytest.mark.integration

SITE = "dongsi"
INGEST_ID = f"footfall-server-{SITE}-ingest"
# Mosquitto at log_type all: `Received PUBLISH from <client> (d0, q1, r1, m2, 'footfall/dongsi/alerts', ...`
RECEIVED = re.compile(r"Received PUBLISH from (\S+) \(d\d, q\d, r(\d), m\d+, '([^']+)'")


@pytest.fixture
def logging_broker(tmp_path):
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: apt-get install mosquitto")
    b = LocalBroker(tmp_path / "broker", kind="mosquitto", extra_conf="log_type all\n").start()
    yield b
    b.stop()


def publishes(broker) -> list[tuple[str, bool, str]]:
    text = (broker.data_dir / "mosquitto.log").read_text(errors="replace")
    return [(client, retain == "1", topic) for client, retain, topic in RECEIVED.findall(text)]


def call(base: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def test_only_ingest_publishes_retained_alerts_schedule_and_rooms(logging_broker, site_file, procs):
    broker = logging_broker
    web_port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}")
    watcher, online = watch_ingest_status(broker)
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    base = f"http://127.0.0.1:{web_port}"
    wait_until(lambda: healthy(web_port), 20, message="web /healthz")
    wait_until(online.is_set, 20, message="ingest online")
    watcher.disconnect()
    watcher.loop_stop()
    token = cli("token", "create", "-c", str(site_file), "--role", "staff", "--label", "test", env=env)
    wait_until(lambda: call(base, token, "GET", "/api/v1/alerts")["v"] == 1, message="web answers")

    # A help call from the kiosk: ingest raises the alert; staff clear it through the web.
    pub(broker, "kiosk-hall", Help(id="help-1", seq=1, ts=utcnow()).encode())
    alerts = wait_until(
        lambda: call(base, token, "GET", "/api/v1/alerts")["alerts"], message="the help alert"
    )
    before = len(publishes(broker))
    call(base, token, "POST", f"/api/v1/alerts/{alerts[0]['id']}/clear")
    site = load_site(site_file)
    today = local_day(utcnow(), site.timezone, site.day_starts).isoformat()
    item = {
        "title": "书法课",
        "kind": "class",
        "room": "classroom",
        "date": today,
        "start": "23:00",
        "end": "23:30",
    }
    call(base, token, "POST", "/api/v1/schedule", item)
    call(base, token, "POST", "/api/v1/rooms/hall/adjust", {"occupancy": 3, "reason": "head count"})

    def republished() -> bool:
        after = [(c, t) for c, r, t in publishes(broker)[before:] if r]
        return {t.rsplit("/", 1)[-1] for _, t in after} >= {"alerts", "schedule", "state"}

    wait_until(republished, 20, message="alerts, schedule and the room republished")
    seen = publishes(broker)
    retained = [(client, topic) for client, retain, topic in seen if retain]
    of_server = [(c, t) for c, t in retained if "/device/" not in t and not t.endswith("/server/status")]
    assert of_server and {c for c, _ in of_server} == {INGEST_ID}, of_server
    web_ids = {c for c, _, _ in seen if c.startswith(f"footfall-server-{SITE}-web-")}
    assert len(web_ids) == 1  # the web process published: only commands for ingest, never retained
    web_topics = {t for c, _, t in seen if c in web_ids}
    assert web_topics == {f"footfall/{SITE}/server/cmd"}, web_topics
    assert not [t for c, r, t in seen if c in web_ids and r]
