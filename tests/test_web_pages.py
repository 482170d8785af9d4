"""Pages, sessions and live-hub decoding with Flask's test client on a real SQLite file."""

from __future__ import annotations

import dataclasses
import json
import stat

from footfall.server.web import create_app
from footfall.server.web.auth import add_user
from footfall.server.web.live import LiveHub

# --- pages and sessions -------------------------------------------------------------------------


def test_pages_redirect_to_login(client):
    r = client.get("/")
    assert r.status_code == 302 and r.location.startswith("/login")
    assert client.get("/screen").status_code == 302


def test_login_dashboard_logout(client, store):
    add_user(store, "li", "password-2", "viewer")
    r = client.post("/login?next=/screen", data={"username": "li", "password": "password-2"})
    assert r.status_code == 302 and r.location == "/screen"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/").get_data(as_text=True)
    assert 'data-room="hall"' in page and 'id="occupancy-hall"' in page
    assert "data-adjust" not in page  # a viewer sees no correction controls
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_staff_dashboard_has_adjust_controls(client, store):
    add_user(store, "zhao", "password-3", "staff")
    client.post("/login", data={"username": "zhao", "password": "password-3"})
    page = client.get("/").get_data(as_text=True)
    assert 'data-adjust="book-bar"' in page and 'id="adjust-dialog"' in page


def test_login_rejects_and_limits(app, client, store):
    add_user(store, "sun", "password-4", "staff")
    app.config["LOGIN_MAX_FAILURES"] = 3
    for _ in range(3):
        assert client.post("/login", data={"username": "sun", "password": "wrong"}).status_code == 401
    assert client.post("/login", data={"username": "sun", "password": "password-4"}).status_code == 429


def test_login_ignores_foreign_next(client, store):
    add_user(store, "qian", "password-5", "staff")
    r = client.post("/login?next=//evil.example/x", data={"username": "qian", "password": "password-5"})
    assert r.location == "/"


def test_screen_with_viewer_token(client, tokens):
    r = client.get(f"/screen?token={tokens['viewer']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'id="visits-today"' in page and 'id="occupancy-hall"' in page
    assert client.get("/screen?token=wrong").status_code == 302
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_secret_key_is_persisted_private(site, store):
    first = create_app(site, store).config["SECRET_KEY"]
    assert create_app(site, store).config["SECRET_KEY"] == first
    mode = (site.data_dir / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    configured = dataclasses.replace(
        site, server=dataclasses.replace(site.server, secret_key="from-the-site-file")
    )
    assert create_app(configured, store).config["SECRET_KEY"] == "from-the-site-file"


# --- live hub decoding (no broker) ------------------------------------------------------------


def test_live_hub_decodes_room_state_and_device_status(site):
    hub = LiveHub(site)
    state = {"v": 1, "room": "hall", "occupancy": 3, "ts": "2026-11-28T02:00:00.000Z"}
    assert hub.decode("footfall/dongsi/room/hall/state", json.dumps(state).encode()) == ("room", state)
    kind, device = hub.decode("footfall/dongsi/device/door-main/status", b'{"v":1,"state":"offline"}')
    assert kind == "device" and device["id"] == "door-main" and device["kind"] == "counter"
    assert device["state"] == "offline"
    assert hub.decode("footfall/other/room/hall/state", json.dumps(state).encode()) is None
    assert hub.decode("footfall/dongsi/device/ghost/status", b'{"v":1,"state":"offline"}') is None
    q = hub.subscribe()
    hub._on_message(
        type("M", (), {"topic": "footfall/dongsi/room/hall/state", "payload": json.dumps(state).encode()})
    )
    older = {**state, "occupancy": 1, "ts": "2026-11-28T01:00:00.000Z"}
    hub._on_message(
        type("M", (), {"topic": "footfall/dongsi/room/hall/state", "payload": json.dumps(older).encode()})
    )
    hub._on_message(type("M", (), {"topic": "footfall/dongsi/room/hall/state", "payload": b"not json"}))
    assert q.get_nowait() == ("room", state) and q.empty()
    assert hub.room_states()["hall"]["occupancy"] == 3
