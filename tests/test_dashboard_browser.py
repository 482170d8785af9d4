"""The live dashboard in real headless Chromium, against the real processes: Mosquitto with the shipped settings,
`footfall server --only ingest` and `--only web`, a staff login made with the CLI. A crossing published with
Debian's mosquitto_pub must show on the open dashboard within a second, without a reload.

Screenshots: tests/artifacts/dashboard-before.png, tests/artifacts/dashboard.png (after the crossing) and
tests/artifacts/screen.png (the lobby big screen opened with a viewer token). Chinese must render (fonts-noto-cjk).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall.clock import format_ts, utcnow
from footfall.demo.broker import free_port
from tests.browser import launch_chromium
from tests.conftest import ARTIFACTS, footfall_env, wait_until
from tests.test_ingest_mqtt import crossing, pub

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SITE = "dongsi"
STAFF, PASSWORD = "duty-officer", "front-desk-2026"


def cli(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "footfall.cli", *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


def watch_ingest_status(broker) -> tuple[mqtt.Client, threading.Event]:
    """The event is set once the ingest announced itself (retained server status `online`): it has subscribed."""
    online = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-watch", protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, *a: c.subscribe(f"footfall/{SITE}/server/status", 1)
    client.on_message = lambda c, u, m: online.set() if m.payload == b"online" else online.clear()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client, online


@pytest.fixture
def running(broker, site_file, procs):
    web_port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}")
    watcher, online = watch_ingest_status(broker)
    ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    web = procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    wait_until(lambda: healthy(web_port), 20, message="web /healthz")
    wait_until(online.is_set, 20, message="ingest online")
    watcher.disconnect()
    watcher.loop_stop()
    cli("user", "add", "-c", str(site_file), STAFF, "--role", "staff", "--password", PASSWORD, env=env)
    token = cli(
        "token", "create", "-c", str(site_file), "--role", "viewer", "--label", "lobby screen", env=env
    )
    yield f"http://127.0.0.1:{web_port}", token
    assert ingest.alive() and web.alive()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


def staff_page(browser, base: str):
    """A 1280x900 page logged in as the staff user, on the dashboard."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/login")
    page.fill("#username", STAFF)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{base}/")
    return page


def test_crossing_reaches_the_open_dashboard_within_a_second(broker, running, browser):
    from playwright.sync_api import expect

    base, token = running
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = staff_page(browser, base)
    occupancy = page.locator("#occupancy-book-bar")
    expect(occupancy).to_have_text("0")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "connected", timeout=5000)
    expect(page.locator("#room-book-bar .room-name")).to_have_text("党建书吧")
    page.screenshot(path=str(ARTIFACTS / "dashboard-before.png"), full_page=True)

    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("() => { window.__footfallMarker = 'still-here'; }")

    # Two people from the hall into the book bar, reported by the book bar's door counter.
    pub(broker, "door-book-bar", crossing("bb-browser-0", 0, count=2))
    expect(occupancy).to_have_text("2", timeout=1000)
    expect(page.locator("#entries-book-bar")).to_have_text("2")

    assert page.evaluate("() => window.__footfallMarker") == "still-here"
    assert navigations == []
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # A visitor presses "call staff" on the hall kiosk: the alert shows at once and stays until cleared.
    help_event = {"v": 1, "id": "help-browser-0", "seq": 1, "ts": format_ts(utcnow()), "type": "help"}
    pub(broker, "kiosk-hall", json.dumps(help_event))
    alerts = page.locator("#alerts")
    expect(alerts).to_be_visible(timeout=2000)
    expect(alerts.locator(".alert-item")).to_contain_text("服务大厅")
    page.screenshot(path=str(ARTIFACTS / "dashboard-alert.png"), full_page=True)
    alerts.locator(".alert-clear").click()
    expect(alerts).to_be_hidden(timeout=2000)
    # The book bar's counter sent no status, but its crossing is a sign of life: the device list catches up.
    expect(page.locator("#device-state-door-book-bar")).to_have_class(
        re.compile("state-online"), timeout=8000
    )

    screen = browser.new_page(viewport={"width": 1920, "height": 1080})
    screen.goto(f"{base}/screen?token={token}")
    expect(screen.locator("#occupancy-book-bar")).to_have_text("2")
    expect(screen.locator("#live-status")).to_have_attribute("data-state", "connected", timeout=5000)
    screen.screenshot(path=str(ARTIFACTS / "screen.png"), full_page=True)
