"""Honest screens in real headless Chromium, against the real processes and a real Mosquitto: with the server's
broker stopped the dashboard's pill says it is not live within 5 s and devices show "unknown", not "offline";
alerts show with the time elapsed, a chime and a flashing title; a frozen web process (its stream open but
silent) stops the pill saying live after two missed pings; and the kiosk's help screen does not claim staff
were notified until ingest has confirmed the call.

Screenshots: tests/artifacts/dashboard-not-live.png, tests/artifacts/kiosk/help-waiting.png and help-confirmed.png.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3

import psutil
import pytest
from playwright.sync_api import expect

from footfall.clock import format_ts, utcnow
from footfall.kiosk.main import KioskService
from tests.conftest import ARTIFACTS, footfall_env, wait_server_online
from tests.test_dashboard_browser import browser, running, staff_page  # noqa: F401 - fixtures
from tests.test_ingest_mqtt import pub
from tests.test_kiosk_app import make_config

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def status(kind: str = "counter") -> str:
    return json.dumps(
        {"v": 1, "state": "online", "kind": kind, "version": "t", "ts": format_ts(utcnow()), "queue": 0,
         "last_seq": 0, "health": {"sensor": "ok", "clock": "synced"}}
    )  # fmt: skip


def test_dashboard_says_not_live_and_unknown_when_its_broker_stops(broker, running, browser):  # noqa: F811
    base, _token = running
    page = staff_page(browser, base)
    pill = page.locator("#live-status")
    expect(pill).to_have_attribute("data-state", "connected", timeout=5000)
    title = page.title()

    pub(broker, "door-main", status(), kind="status")
    expect(page.locator("#device-state-door-main")).to_have_text("在线", timeout=5000)
    expect(page.locator("#last-data")).to_contain_text("最新数据", timeout=5000)

    help_event = {"v": 1, "id": "help-honest-0", "seq": 1, "ts": format_ts(utcnow()), "type": "help"}
    pub(broker, "kiosk-hall", json.dumps(help_event))
    item = page.locator("#alerts .alert-item")
    expect(item).to_contain_text("服务大厅：访客呼叫工作人员", timeout=3000)
    expect(item.locator(".alert-elapsed")).to_have_text(re.compile(r"^\d+ 秒前$"))
    page.wait_for_function(
        "t => document.title !== t && document.title.startsWith('\u26a0')", arg=title, timeout=3000
    )
    assert page.evaluate("() => window.Footfall.chimes") == 1  # a new alert chimes once

    broker.stop()
    expect(pill).not_to_have_attribute("data-state", "connected", timeout=5000)
    expect(pill).to_have_text("未实时：服务器连不上消息服务")
    states = page.locator(".device-table .state-badge")
    expect(states.first).to_have_text("未知", timeout=2000)
    assert set(states.all_text_contents()) == {"未知"}  # nobody is sent to walk to every door
    devices = page.evaluate("() => fetch('/api/v1/devices').then(r => r.json())")
    assert {d["state"] for d in devices} == {"unknown"}
    page.screenshot(path=str(ARTIFACTS / "dashboard-not-live.png"), full_page=True)

    broker.start()  # the link comes back by itself, and with it the real states
    expect(pill).to_have_attribute("data-state", "connected", timeout=40000)
    expect(page.locator("#device-state-door-main")).to_have_text("在线", timeout=10000)


def test_dashboard_stops_claiming_live_when_the_web_process_freezes(running, browser):  # noqa: F811
    base, _token = running
    page = staff_page(browser, base)
    pill = page.locator("#live-status")
    expect(pill).to_have_attribute("data-state", "connected", timeout=5000)
    [web] = [p for p in psutil.Process().children() if "web" in p.cmdline()]
    web.send_signal(signal.SIGSTOP)  # the TCP connection stays open; no error reaches the browser
    try:
        # 15 s pings: two missed and 5 s slack.
        expect(pill).not_to_have_attribute("data-state", "connected", timeout=45000)
        expect(pill).to_have_text("连接中断，正在重连…")
    finally:
        web.send_signal(signal.SIGCONT)
    expect(pill).to_have_attribute("data-state", "connected", timeout=30000)


@pytest.fixture
def kiosk(tmp_path, broker):
    service = KioskService(make_config(tmp_path, port=broker.port), port=0).start()
    yield service
    service.stop()


def test_kiosk_help_is_not_claimed_before_the_server_confirms_it(broker, site_file, procs, kiosk, browser):  # noqa: F811
    env = footfall_env(broker)
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    wait_server_online(broker)
    broker.stop()  # the server's broker goes away: the call can only wait in the kiosk's outbox

    context = browser.new_context(viewport={"width": 800, "height": 480}, has_touch=True)
    page = context.new_page()
    page.goto(kiosk.url)
    page.tap("#btn-help")
    overlay = page.locator("#overlay-help")
    expect(overlay).to_be_visible()
    expect(overlay).to_have_attribute("data-help", "waiting")
    expect(page.locator("#help-title")).to_have_text("正在呼叫工作人员…")
    expect(page.locator("#help-hint")).to_contain_text("服务台")
    page.wait_for_timeout(3000)  # polling all along: still no claim
    assert "已通知" not in overlay.inner_text()
    (ARTIFACTS / "kiosk").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "kiosk" / "help-waiting.png"))

    broker.start()  # the outbox delivers, ingest commits and confirms: now the kiosk may say so
    expect(overlay).to_have_attribute("data-help", "confirmed", timeout=45000)
    expect(page.locator("#help-title")).to_have_text("已通知工作人员")
    page.screenshot(path=str(ARTIFACTS / "kiosk" / "help-confirmed.png"))
    db = site_file.parent / "data" / "footfall.db"
    with sqlite3.connect(db) as conn:
        open_help = conn.execute(
            "SELECT count(*) FROM alerts WHERE kind='help' AND cleared_at IS NULL"
        ).fetchone()
    assert open_help == (1,)  # the confirmation came after the alert was stored
    context.close()
