"""Kiosk hardening (#16): a CSRF token and same-origin check on every POST, allowed Host names (DNS rebinding), the
staff PIN stored hashed and never the example's, wrong PINs backing off per source, a damaged cache rebuilt, a
damaged outbox one named line, a full outbox sending the visitor to the service desk."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from footfall.demo.broker import free_port
from footfall.demo.run import KIOSK_TOML, demo_pin
from footfall.errors import ConfigError
from footfall.kiosk.app import create_app
from footfall.kiosk.cli import kiosk as kiosk_command
from footfall.kiosk.config import kiosk_config_from_dict, load_kiosk_config, refuse_example_pin
from footfall.kiosk.local import LocalState
from footfall.kiosk.pin import hash_pin, verify_pin, weak_reason
from footfall.outbox import Outbox
from tests.browser import launch_chromium
from tests.conftest import wait_until
from tests.test_kiosk_app import (  # noqa: F401 - `app` is a fixture
    NOW,
    PIN,
    PIN_HASH,
    ROOT,
    app,
    client_of,
    events,
    schedule_payload,
)

LOGIN = "/api/staff/login"


def post_routes(application) -> list[str]:
    return sorted(r.rule for r in application.url_map.iter_rules() if "POST" in (r.methods or ()))


# --- CSRF and Host --------------------------------------------------------------------------------------------


def test_every_post_route_needs_the_csrf_token(app):  # noqa: F811
    routes = post_routes(app)
    assert {"/api/checkin", "/api/help", "/api/scan", LOGIN, "/api/staff/language"} <= set(routes)
    bare = app.test_client()  # no token
    for route in routes:
        for kwargs in ({"json": {"purpose": "affairs", "adults": 1, "pin": PIN}}, {"data": {"pin": PIN}}, {}):
            r = bare.post(route, **kwargs)
            assert r.status_code == 403 and r.json["error"] == "csrf", (route, kwargs, r.json)
    wrong = app.test_client()
    wrong.environ_base["HTTP_X_CSRF_TOKEN"] = "x" * 43
    assert wrong.post("/api/help").status_code == 403
    assert events(app) == []
    assert client_of(app).post("/api/help").json["status"] == "sent"  # with the token: taken


def test_a_foreign_origin_form_post_is_refused_even_with_the_token(app):  # noqa: F811
    client = client_of(app)
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:9999"},  # another port on this Pi is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        r = client.post("/api/help", data={"x": "1"}, headers=headers)
        assert r.status_code == 403 and r.json["error"] == "csrf", headers
    assert events(app) == []
    same = client.post("/api/help", headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200


def test_a_local_client_gets_the_token_from_get_api_csrf(app):  # noqa: F811
    plain = app.test_client()
    body = plain.get("/api/csrf").json
    assert body["header"] == "X-CSRF-Token" and body["token"] in plain.get("/").get_data(as_text=True)
    r = plain.post(
        "/api/checkin", json={"purpose": "reading", "adults": 1}, headers={"X-CSRF-Token": body["token"]}
    )
    assert r.status_code == 200 and r.json["status"] == "ok"


def test_only_allowed_host_names_are_answered(tmp_path):
    application = create_app(config(tmp_path, allowed_hosts=["kiosk.local"]))
    client = client_of(application)
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "192.168.1.20:8080"):
        for r in (client.get("/", headers={"Host": host}), client.post("/api/help", headers={"Host": host})):
            assert r.status_code == 400 and r.json["error"] == "bad_host", host
    for host in ("127.0.0.1:8080", "KIOSK.local:8080", "kiosk.local."):
        assert client.get("/api/state", headers={"Host": host}).status_code == 200, host
    assert client.get("/api/state", headers={"Host": "localhost"}).status_code == 400  # not listed here
    assert events_of(application) == []


def events_of(application) -> list:
    return application.extensions["kiosk"].runtime.outbox.pending(0, 100)


@pytest.mark.browser
def test_in_chromium_a_foreign_page_cannot_post_and_a_rebound_name_is_refused(tmp_path):
    application = create_app(config(tmp_path), test_config={"now": lambda: NOW})
    application.extensions["kiosk"].local.set_schedule(schedule_payload())
    server = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    kiosk_url = f"http://127.0.0.1:{port}/"
    try:
        with sync_playwright() as p:
            # DNS rebinding: evil.example -> kiosk
            browser = launch_chromium(p, ("--host-resolver-rules=MAP evil.example 127.0.0.1",))
            page = browser.new_context(has_touch=True).new_page()
            # A page of another site with a form that posts to the kiosk by itself (the CSRF of #16).
            page.route(
                "http://attacker.example/",
                lambda route: route.fulfill(
                    content_type="text/html",
                    body=f'<form method="post" action="{kiosk_url}api/help"></form>'
                    "<script>document.forms[0].submit()</script>",
                ),
            )
            page.goto("http://attacker.example/")
            page.wait_for_url(f"{kiosk_url}api/help")
            assert '"csrf"' in page.content()
            # The same site's name re-pointed at 127.0.0.1: the kiosk sees Host evil.example and refuses.
            response = page.goto(f"http://evil.example:{port}/")
            assert response.status == 400 and '"bad_host"' in page.content()
            assert events_of(application) == []
            # The kiosk's own page still calls staff, also after a restart changed the token (it fetches anew).
            page.goto(kiosk_url)
            application.extensions["kiosk"].guard.token = "restarted"
            page.tap("#btn-help")
            expect(page.locator("#overlay-help")).to_be_visible()
            assert [e.payload for e in events_of(application)] and len(events_of(application)) == 1
            browser.close()
    finally:
        server.shutdown()
        application.extensions["kiosk"].runtime.outbox.close()
        application.extensions["kiosk"].local.close()


# --- the staff PIN --------------------------------------------------------------------------------------------


def test_pin_command_stores_only_a_hash_and_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "kiosk.toml"
    text = (ROOT / "deploy/examples/kiosk.toml").read_text()
    path.write_text(text)
    os.chmod(path, 0o640)
    result = CliRunner().invoke(kiosk_command, ["pin", "-c", str(path)], input="7305\n7305\n")
    assert result.exit_code == 0, result.output
    new = path.read_text()
    assert "7305" not in new and (path.stat().st_mode & 0o777) == 0o640
    config = load_kiosk_config(path, env={})
    assert verify_pin("7305", config.kiosk.staff_pin_hash) and not verify_pin(
        "2468", config.kiosk.staff_pin_hash
    )
    kept = [line for line in text.splitlines() if not line.startswith("staff_pin_hash")]
    assert [line for line in new.splitlines() if not line.startswith("staff_pin_hash")] == kept
    # A file with the old plain PIN: the line is replaced, nothing else changes.
    old = tmp_path / "old.toml"
    old.write_text(
        '[device]\nid = "kiosk-hall"\nsite = "dongsi"\n\n[kiosk]\nstaff_pin = "8264"\nsound = true\n'
        '[mqtt]\nhost = "192.168.1.10"\n'
    )
    assert CliRunner().invoke(kiosk_command, ["pin", "-c", str(old)], input="8264\n8264\n").exit_code == 0
    lines = old.read_text().splitlines()
    assert lines[:5] == ["[device]", 'id = "kiosk-hall"', 'site = "dongsi"', "", "[kiosk]"]
    assert lines[5].startswith('staff_pin_hash = "scrypt$') and lines[6:] == [
        "sound = true",
        "[mqtt]",
        'host = "192.168.1.10"',
    ]
    assert verify_pin("8264", load_kiosk_config(old, env={}).kiosk.staff_pin_hash)


@pytest.mark.parametrize(
    ("pin", "why"),
    [("2468", "example"), ("1111", "repeated"), ("4567", "run"), ("8642", "run"), ("12", "4 to 8")],
)
def test_pin_command_refuses_weak_pins(tmp_path, pin, why):
    path = tmp_path / "kiosk.toml"
    path.write_text("[kiosk]\n")
    result = CliRunner().invoke(kiosk_command, ["pin", "-c", str(path)], input=f"{pin}\n{pin}\n")
    assert result.exit_code == 1 and why in result.output
    assert path.read_text() == "[kiosk]\n"


def test_pin_command_can_print_the_line_only():
    result = CliRunner().invoke(kiosk_command, ["pin", "--print"], input="7305\n7305\n")
    line = result.output.strip().splitlines()[-1]
    assert result.exit_code == 0 and line.startswith('staff_pin_hash = "scrypt$')
    assert verify_pin("7305", line.split('"')[1])


def kiosk_toml(tmp_path: Path, pin_hash: str, port: int) -> Path:
    path = tmp_path / "kiosk.toml"
    text = (ROOT / "deploy/examples/kiosk.toml").read_text()
    text = text.replace('"/var/lib/footfall-kiosk"', f'"{tmp_path / "kiosk"}"').replace(
        '"127.0.0.1:8080"', f'"127.0.0.1:{port}"'
    )
    path.write_text(text.replace(text.split('staff_pin_hash = "')[1].split('"')[0], pin_hash))
    return path


def run_kiosk(path: Path, timeout: float = 20) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOOTFALL_MQTT_HOST": "127.0.0.1", "FOOTFALL_MQTT_PORT": str(free_port())}
    return subprocess.run(
        [sys.executable, "-m", "footfall.cli", "kiosk", "-c", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.integration
def test_the_example_pin_is_refused_at_start_up(tmp_path, procs):
    example = load_kiosk_config(ROOT / "deploy/examples/kiosk.toml", env={}).kiosk.staff_pin_hash
    path = kiosk_toml(tmp_path, example, free_port())
    result = run_kiosk(path)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, lines
    assert str(path) in lines[0] and "kiosk.staff_pin_hash" in lines[0] and "2468" in lines[0]
    assert "Traceback" not in lines[0] and not (tmp_path / "kiosk" / "outbox.db").exists()
    # With a PIN of its own, the same file starts and serves the page.
    port = free_port()
    path = kiosk_toml(tmp_path, PIN_HASH, port)
    env = {**os.environ, "FOOTFALL_MQTT_HOST": "127.0.0.1", "FOOTFALL_MQTT_PORT": str(free_port())}
    proc = procs("kiosk", "-c", str(path), env=env, name="kiosk")
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/api/csrf") or not proc.alive(), 20)
    assert proc.alive(), proc.output()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_wrong_pins_back_off_per_source_and_are_logged(app, caplog):  # noqa: F811
    kiosk = app.extensions["kiosk"]
    clock = {"t": 1000.0}
    kiosk.pins.clock = lambda: clock["t"]
    guesser, staff = client_of(app, REMOTE_ADDR="127.0.0.2"), client_of(app)
    with caplog.at_level(logging.WARNING, "footfall.kiosk.pin"):
        codes = [guesser.post(LOGIN, json={"pin": "0000"}).status_code for _ in range(6)]
        assert codes == [403] * 5 + [429]
        assert staff.post(LOGIN, json={"pin": PIN}).status_code == 200  # not locked out by someone else
        assert (
            guesser.post(LOGIN, json={"pin": PIN}).status_code == 429
        )  # the guesser waits, even with the PIN
        clock["t"] += 61
        assert guesser.post(LOGIN, json={"pin": "0000"}).status_code == 403
        waiting = guesser.post(LOGIN, json={"pin": PIN})
        assert waiting.status_code == 429 and "wait 120 s" in waiting.json["detail"]  # doubled
        clock["t"] += 121
        assert guesser.post(LOGIN, json={"pin": PIN}).status_code == 200
        assert guesser.post(LOGIN, json={"pin": "0000"}).status_code == 403  # a success starts again at one
    messages = [r.getMessage() for r in caplog.records]
    assert "wrong staff PIN from 127.0.0.2 (1 in a row)" in messages
    assert "wrong staff PIN from 127.0.0.2 (5 in a row): that source must wait 60 s" in messages
    assert "wrong staff PIN from 127.0.0.2 (6 in a row): that source must wait 120 s" in messages
    assert not any(PIN in m or "0000" in m for m in messages)  # the PINs tried are not logged


def test_the_demo_makes_its_own_pin(tmp_path):
    pins = {demo_pin() for _ in range(20)}
    assert len(pins) > 1 and all(weak_reason(p) is None for p in pins)
    pin = pins.pop()
    text = KIOSK_TOML.format(port=8080, data_dir=tmp_path, pin_hash=hash_pin(pin))
    config = kiosk_config_from_dict(tomllib.loads(text), env={})
    refuse_example_pin(config)  # does not raise: the demo's kiosk starts
    assert verify_pin(pin, config.kiosk.staff_pin_hash)


def test_the_pin_is_never_in_the_config_in_plain_text(tmp_path):
    raw = {
        "device": {"id": "kiosk-hall", "site": "dongsi"},
        "mqtt": {"host": "h"},
        "kiosk": {"staff_pin": PIN},
    }
    with pytest.raises(Exception, match="footfall kiosk pin"):
        kiosk_config_from_dict(raw, env={})


# --- damaged files and a full outbox ----------------------------------------------------------------------------


def config(tmp_path, outbox: dict | None = None, **kiosk):
    raw = {
        "device": {"id": "kiosk-hall", "site": "dongsi", "clock": "synced"},
        "mqtt": {"host": "127.0.0.1"},
        "kiosk": {"data_dir": str(tmp_path / "kiosk"), "staff_pin_hash": PIN_HASH, **kiosk},
        "outbox": outbox or {},
    }
    return kiosk_config_from_dict(raw, env={})


def _garble(path: Path, keep: int) -> None:
    data = path.read_bytes()[:keep] if path.exists() else b""
    path.write_bytes(data + os.urandom(3000))


@pytest.mark.parametrize("damage", ["garbage", "half"])
def test_a_damaged_duplicate_check_cache_is_rebuilt(tmp_path, caplog, damage):
    day = dt.date(2026, 11, 28)
    local = LocalState(tmp_path)
    for n in range(3000):
        local.remember(day, f"{n:09d}", "tai-chi", "09:30")
    local.close()
    db = tmp_path / "kiosk.db"
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    else:
        with open(db, "r+b") as fh:
            fh.truncate(db.stat().st_size // 2)
    with caplog.at_level(logging.WARNING):
        again = LocalState(tmp_path)
    assert any(str(db) in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    assert again.already(day, "000000001", "tai-chi") is None  # forgotten, not fatal
    again.remember(day, "000000001", "tai-chi", "10:00")
    assert again.already(day, "000000001", "tai-chi") == "10:00"
    again.close()


def test_a_cache_damaged_while_running_is_rebuilt(tmp_path, caplog):
    day = dt.date(2026, 11, 28)
    local = LocalState(tmp_path)
    local.remember(day, "000000001", "tai-chi", "09:30")
    # The file goes bad under the running kiosk (SQLite notices at the next read that is not cached).
    local._db.close()
    _garble(tmp_path / "kiosk.db", 0)
    local._db = sqlite3.connect(tmp_path / "kiosk.db", check_same_thread=False, isolation_level=None)
    with caplog.at_level(logging.WARNING):
        assert local.already(day, "000000002", "tai-chi") is None
        local.remember(day, "000000002", "tai-chi", "10:00")
    assert local.already(day, "000000002", "tai-chi") == "10:00"
    assert any("damaged" in r.getMessage() for r in caplog.records)
    local.close()


@pytest.mark.integration
@pytest.mark.parametrize("damage", ["garbage", "half"])
def test_a_damaged_outbox_is_one_line_naming_the_file(tmp_path, damage):
    path = kiosk_toml(tmp_path, PIN_HASH, free_port())
    outbox_path = tmp_path / "kiosk" / "outbox.db"
    if damage == "garbage":
        outbox_path.parent.mkdir(parents=True)
        outbox_path.write_bytes(os.urandom(20_000))
    else:
        outbox = Outbox(outbox_path)
        for n in range(2000):
            outbox.append(lambda seq, n=n: (f"id-{n}", "t", b"x" * 200))
        outbox._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        outbox.close()
        with open(outbox_path, "r+b") as fh:
            fh.truncate(outbox_path.stat().st_size // 2)
    before = outbox_path.read_bytes()
    result = run_kiosk(path)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, lines
    assert str(outbox_path) in lines[0] and "damaged" in lines[0] and "Traceback" not in lines[0]
    assert outbox_path.read_bytes() == before  # left as it was, for the staff to move aside


def test_a_full_outbox_sends_the_visitor_to_the_desk_not_a_500(tmp_path, caplog):
    outbox = {"max_events": 2, "high_water": 1, "window": 7}  # kiosk.toml's [outbox]
    application = create_app(config(tmp_path, outbox=outbox), test_config={"now": lambda: NOW})
    settings = application.extensions["kiosk"].runtime.settings
    assert (settings.max_events, settings.high_water, settings.window) == (2, 1, 7)
    client = client_of(application)
    body = {"purpose": "reading", "adults": 1}
    assert [client.post("/api/checkin", json=body).status_code for _ in range(2)] == [200, 200]
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            r = client.post("/api/checkin", json=body)
            assert r.status_code == 503 and r.json["error"] == "outbox_full"
        assert client.post("/api/help").json["error"] == "outbox_full"
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert (
        len(refusals) == 1 and "outbox.db is full" in refusals[0].getMessage()
    )  # once a minute, not per refusal
    assert application.extensions["kiosk"].runtime.health()["outbox"] == "full"
    application.extensions["kiosk"].runtime.outbox.close()
    application.extensions["kiosk"].local.close()


@pytest.mark.browser
def test_in_chromium_a_full_outbox_says_see_the_service_desk(tmp_path):
    application = create_app(config(tmp_path, outbox={"max_events": 1}), test_config={"now": lambda: NOW})
    server = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_context(viewport={"width": 800, "height": 480}, has_touch=True).new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            for attempt in range(2):
                page.tap("#btn-start")
                page.tap('[data-purpose="reading"]')
                page.tap("#btn-people-next")
                page.tap("#btn-anonymous")
                if attempt == 0:
                    expect(page.locator("body")).to_have_attribute("data-screen", "success")
                    page.tap("#btn-done")
            expect(page.locator("#overlay-error")).to_be_visible()
            expect(page.locator("#overlay-error p")).to_have_text("请到服务台，工作人员帮您登记")
            page.tap("#btn-lang")
            expect(page.locator("#overlay-error p")).to_have_text(
                "Please see the service desk: the staff will check you in"
            )
            browser.close()
    finally:
        server.shutdown()
        application.extensions["kiosk"].runtime.outbox.close()
        application.extensions["kiosk"].local.close()


def test_a_kiosk_file_from_device_add_needs_its_pin_set_on_the_pi(site_file, tmp_path):
    from footfall.cli import main as footfall_main

    added = CliRunner().invoke(
        footfall_main, ["device", "add", "-c", str(site_file), "kiosk-hall", "--no-tls"]
    )
    assert added.exit_code == 0, added.output
    path = Path(re.search(r"Its config file \(with its password\) is (\S+):", added.output)[1])
    with pytest.raises(ConfigError, match=r"kiosk\.staff_pin_hash: is required.*footfall kiosk pin"):
        load_kiosk_config(path, env={})
    assert CliRunner().invoke(kiosk_command, ["pin", "-c", str(path)], input="7305\n7305\n").exit_code == 0
    assert verify_pin("7305", load_kiosk_config(path, env={}).kiosk.staff_pin_hash)
    assert (path.stat().st_mode & 0o777) == 0o600  # it holds the MQTT password: kept private
