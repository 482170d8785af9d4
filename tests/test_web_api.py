"""The HTTP API with Flask's test client on a real SQLite file; the clock is fixed, nothing sleeps."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from footfall.clock import format_ts
from footfall.server.occupancy import RoomCounts
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import add_user, create_token
from footfall.server.web.live import LiveHub, LocalHub
from tests.webkit import NOW, TODAY, add_crossings, assert_error, auth, event_row

# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/rooms", "/api/v1/rooms/hall", "/api/v1/devices", "/api/v1/daily", "/api/v1/stream"]
)
def test_viewer_routes_need_credentials(client, path):
    body = assert_error(client.get(path), 401)
    assert body["error"] == "unauthorized"
    assert client.get(path).headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_tokens_are_401(client, tokens):
    assert "revoked" in assert_error(client.get("/api/v1/rooms", headers=auth("nope")), 401)["detail"]
    assert_error(client.get("/api/v1/rooms", headers={"Authorization": f"Basic {tokens['staff']}"}), 401)
    assert_error(client.get("/api/v1/rooms", headers={"Authorization": "Bearer "}), 401)


@pytest.mark.parametrize("path", ["/api/v1/adjustments", "/api/v1/dead-letters"])
def test_staff_routes(client, tokens, path):
    assert_error(client.get(path), 401)
    assert assert_error(client.get(path, headers=auth(tokens["viewer"])), 403)["error"] == "forbidden"
    assert client.get(path, headers=auth(tokens["staff"])).status_code == 200
    assert client.get(path, headers=auth(tokens["admin"])).status_code == 200


def test_tokens_are_stored_hashed(store):
    token = create_token(store, "viewer", "lobby tv")
    assert len(token) >= 40
    assert store.token_role(hashlib.sha256(token.encode()).hexdigest()) == ("viewer", "lobby tv")
    stored = [tuple(r) for r in store.conn.execute("SELECT * FROM tokens")]
    assert all(token not in str(row) for row in stored)
    with pytest.raises(ValueError):
        create_token(store, "root", "x")


def test_add_user(store):
    add_user(store, "desk", "long enough", "staff")
    assert store.get_user("desk")["password_hash"].startswith("scrypt:")
    for args in (("desk", "short", "staff"), ("desk", "long enough", "boss"), ("", "long enough", "staff")):
        with pytest.raises(ValueError):
            add_user(store, *args)


def test_query_token_only_for_screen_reads_and_only_viewer(client, tokens):
    staff = tokens["staff"]
    assert client.get(f"/api/v1/rooms?token={staff}").status_code == 200
    assert_error(client.get(f"/api/v1/adjustments?token={staff}"), 401)
    assert_error(client.get(f"/api/v1/devices?token={staff}"), 401)
    assert_error(
        client.post(f"/api/v1/rooms/hall/adjust?token={staff}", json={"occupancy": 1, "reason": "x"}), 401
    )


# --- rooms and adjust ---------------------------------------------------------------------------


def test_rooms(client, site, tokens):
    rooms = client.get("/api/v1/rooms", headers=auth(tokens["viewer"])).get_json()
    assert [r["room"] for r in rooms] == [r.id for r in site.rooms]
    hall = rooms[0]
    assert (
        hall["name"] == "服务大厅"
        and hall["occupancy"] == 0
        and hall["capacity"] == 80
        and hall["level"] == "ok"
    )
    assert {"v", "entries_today", "exits_today", "ts"} <= set(hall)


def test_one_room_and_unknown_room(client, tokens):
    assert client.get("/api/v1/rooms/book-bar", headers=auth(tokens["viewer"])).get_json()["capacity"] == 40
    assert (
        assert_error(client.get("/api/v1/rooms/attic", headers=auth(tokens["viewer"])), 404)["error"]
        == "not_found"
    )


def test_adjust_sets_occupancy_and_audits(client, store, tokens, hub):
    with store.transaction() as tx:
        tx.put_room_counts(
            "book-bar", RoomCounts(day=TODAY, occupancy=7, raw_net=7, entries=10, exits=3, peak=8), NOW
        )
    stream = hub.subscribe()
    r = client.post("/api/v1/rooms/book-bar/adjust", json={"occupancy": 38, "reason": "counted by hand"},
                    headers=auth(tokens["staff"]))  # fmt: skip
    assert r.status_code == 200, r.data
    state = r.get_json()
    assert (state["occupancy"], state["entries_today"], state["exits_today"], state["level"]) == (
        38,
        10,
        3,
        "busy",
    )
    assert client.get("/api/v1/rooms/book-bar", headers=auth(tokens["viewer"])).get_json()["occupancy"] == 38
    counts = store.rooms_live()["book-bar"]
    assert (counts.corrected, counts.peak) == (31, 38)
    audit = client.get("/api/v1/adjustments", headers=auth(tokens["staff"])).get_json()
    assert len(audit) == 1
    assert audit[0]["room"] == "book-bar" and audit[0]["user"] == "token:staff-label"
    assert (audit[0]["from_value"], audit[0]["to_value"], audit[0]["reason"]) == (7, 38, "counted by hand")
    assert stream.get_nowait() == ("room", state)  # live streams hear about it at once


def test_adjust_starts_from_zero_on_a_new_day(client, store, tokens):
    with store.transaction() as tx:
        tx.put_room_counts("hall", RoomCounts(day=TODAY - dt.timedelta(days=1), occupancy=9, entries=50), NOW)
    state = client.post("/api/v1/rooms/hall/adjust", json={"occupancy": 2, "reason": "morning"},
                        headers=auth(tokens["admin"])).get_json()  # fmt: skip
    assert (state["occupancy"], state["entries_today"], state["day"]) == (2, 0, TODAY.isoformat())
    assert store.adjustments()[0]["from_value"] == 0


def test_adjust_by_logged_in_user_is_audited_by_name(client, store):
    add_user(store, "wang", "password-1", "staff")
    client.post("/login", data={"username": "wang", "password": "password-1"})
    r = client.post("/api/v1/rooms/hall/adjust", json={"occupancy": 4, "reason": "门口清点"})
    assert r.status_code == 200
    assert store.adjustments()[0]["user"] == "wang" and store.adjustments()[0]["reason"] == "门口清点"


def test_adjust_needs_staff(client, tokens):
    body = {"occupancy": 1, "reason": "x"}
    assert_error(client.post("/api/v1/rooms/hall/adjust", json=body), 401)
    assert_error(client.post("/api/v1/rooms/hall/adjust", json=body, headers=auth(tokens["viewer"])), 403)
    assert_error(client.post("/api/v1/rooms/attic/adjust", json=body, headers=auth(tokens["staff"])), 404)


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": "occupancy=3", "content_type": "application/x-www-form-urlencoded"}, 400),
        ({"data": "{not json", "content_type": "application/json"}, 400),
        ({"json": [3, "x"]}, 422),
        ({"json": {"reason": "x"}}, 422),
        ({"json": {"occupancy": -1, "reason": "x"}}, 422),
        ({"json": {"occupancy": "5", "reason": "x"}}, 422),
        ({"json": {"occupancy": 2.5, "reason": "x"}}, 422),
        ({"json": {"occupancy": True, "reason": "x"}}, 422),
        ({"json": {"occupancy": 10**9, "reason": "x"}}, 422),
        ({"json": {"occupancy": 3}}, 422),
        ({"json": {"occupancy": 3, "reason": "   "}}, 422),
        ({"json": {"occupancy": 3, "reason": 7}}, 422),
    ],
)
def test_adjust_rejects_bad_bodies(client, store, tokens, kwargs, status):
    assert_error(client.post("/api/v1/rooms/hall/adjust", headers=auth(tokens["staff"]), **kwargs), status)
    assert store.adjustments() == []
    assert "hall" not in store.rooms_live()


# --- devices, daily, lists ----------------------------------------------------------------------


def test_devices_merge_site_and_store_and_go_stale(client, store, tokens):
    with store.transaction() as tx:
        fresh = format_ts(NOW - dt.timedelta(seconds=60))
        stale = format_ts(NOW - dt.timedelta(seconds=151))
        tx.upsert_device("door-main", {"state": "online", "last_seen": fresh, "kind": "counter", "queue": 2,
                                       "health": {"sensor": "ok", "clock": "synced"}})  # fmt: skip
        tx.upsert_device("door-book-bar", {"state": "online", "last_seen": stale})
        tx.upsert_device("kiosk-hall", {"state": "offline", "last_seen": fresh})
        tx.upsert_device("not-in-site-file", {"state": "online", "last_seen": fresh})
    devices = {d["id"]: d for d in client.get("/api/v1/devices", headers=auth(tokens["viewer"])).get_json()}
    assert set(devices) == {"door-main", "door-book-bar", "door-classroom", "door-counselling",
                            "door-culture-sports", "door-e-learning", "door-meeting", "door-parent-child",
                            "door-multi-purpose", "kiosk-hall"}  # fmt: skip
    for device in devices.values():
        assert {"id", "kind", "state", "last_seen", "queue", "health"} <= set(device)
    assert devices["door-main"]["state"] == "online" and devices["door-main"]["queue"] == 2
    assert devices["door-main"]["health"] == {"sensor": "ok", "clock": "synced"}
    assert devices["door-book-bar"]["state"] == "offline"  # online, but silent for more than 150 s
    assert devices["kiosk-hall"]["state"] == "offline" and devices["kiosk-hall"]["kind"] == "kiosk"
    assert devices["door-meeting"] == {**devices["door-meeting"], "state": "unknown", "last_seen": None}


def test_daily(client, store, tokens):
    add_crossings(store, [
        ("door-main", "in", 1, 90), ("door-main", "in", 2, 80), ("door-book-bar", "in", 1, 70),
        ("door-book-bar", "out", 1, 30), ("door-main", "out", 1, 10),
    ])  # fmt: skip
    with store.transaction() as tx:
        tx.insert_event(
            event_row("kiosk-hall", "k1", NOW, type="checkin", purpose="reading", adults=1, children=2)
        )
        tx.insert_event(
            event_row("kiosk-hall", "k2", NOW, type="checkin", purpose="affairs", adults=1, children=0)
        )
    report = client.get("/api/v1/daily", headers=auth(tokens["viewer"])).get_json()
    assert report["date"] == TODAY.isoformat()
    rooms = {r["room"]: r for r in report["rooms"]}
    assert len(rooms) == 9 and set(rooms["meeting"]) == {"room", "entries", "exits", "peak", "peak_at"}
    assert rooms["hall"] == {"room": "hall", "entries": 4, "exits": 2, "peak": 3,
                             "peak_at": format_ts(NOW - dt.timedelta(minutes=80))}  # fmt: skip
    assert (rooms["book-bar"]["entries"], rooms["book-bar"]["exits"], rooms["meeting"]["entries"]) == (
        1,
        1,
        0,
    )
    assert report["visits"] == 3  # from outdoors only: coming back from the book bar is not a visit
    assert report["checkins"] == {
        "total": 2, "people": 4,
        "by_purpose": {"affairs": 1, "class": 0, "activity": 0, "reading": 1, "counselling": 0, "culture": 0, "other": 0},
    }  # fmt: skip
    other = client.get("/api/v1/daily?date=2026-11-01", headers=auth(tokens["viewer"])).get_json()
    assert (
        other["date"] == "2026-11-01"
        and other["checkins"]["total"] == 0
        and other["rooms"][0]["entries"] == 0
    )


@pytest.mark.parametrize("date", ["2026-13-01", "yesterday", "20261128", ""])
def test_daily_bad_date(client, tokens, date):
    assert_error(client.get(f"/api/v1/daily?date={date}", headers=auth(tokens["viewer"])), 400)


def test_dead_letters_and_limit(client, store, tokens):
    with store.transaction() as tx:
        tx.dead_letter("footfall/dongsi/device/x/event", b"{oops", "not JSON", NOW)
    rows = client.get("/api/v1/dead-letters", headers=auth(tokens["staff"])).get_json()
    assert rows[0]["reason"] == "not JSON" and rows[0]["excerpt"] == "{oops"
    assert_error(client.get("/api/v1/dead-letters?limit=0", headers=auth(tokens["staff"])), 400)
    assert_error(client.get("/api/v1/adjustments?limit=x", headers=auth(tokens["staff"])), 400)


# --- stream -------------------------------------------------------------------------------------


def read_events(chunks, n):
    out = []
    while len(out) < n:
        text = next(chunks).decode()
        for block in text.strip().split("\n\n"):
            lines = dict(
                line.split(": ", 1) for line in block.splitlines() if not line.startswith(("retry", ":"))
            )
            out.append((lines["event"], lines["data"]) if lines else ("comment", block))
    return out


def test_stream_sends_state_then_changes(client, tokens, hub, site):
    r = client.get("/api/v1/stream", headers=auth(tokens["viewer"]), buffered=False)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    chunks = r.response
    assert next(chunks).decode().startswith("retry:")
    first = read_events(chunks, len(site.rooms) + len(site.devices) + 2)
    assert [json.loads(d)["room"] for e, d in first if e == "room"] == [room.id for room in site.rooms]
    assert sum(1 for e, _ in first if e == "device") == len(site.devices)
    assert first[-2] == ("alerts", '{"v":1,"alerts":[]}')
    assert json.loads(first[-1][1])["live"] is True  # LocalHub: no broker to lose
    assert read_events(chunks, 1) == [("ping", '{"every_s":0}')]  # SSE_PING_S=0: no change yet -> a ping
    client.post(
        "/api/v1/rooms/meeting/adjust",
        json={"occupancy": 12, "reason": "meeting"},
        headers=auth(tokens["staff"]),
    )
    hub.broadcast("device", {"id": "door-main", "state": "offline"})
    (kind, payload), (kind2, payload2) = read_events(chunks, 2)
    assert kind == "room" and json.loads(payload)["occupancy"] == 12
    assert kind2 == "device" and json.loads(payload2)["state"] == "offline"
    assert hub.subscriber_count == 1
    r.close()
    assert hub.subscriber_count == 0


def test_slow_stream_is_dropped(hub):
    small = LocalHub(maxsize=2)
    q = small.subscribe()
    for n in range(3):
        small.broadcast("room", {"n": n})
    assert not small.is_subscribed(q) and q.qsize() == 2


# --- health and errors --------------------------------------------------------------------------


def test_healthz_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_healthz_degraded_without_broker(site, store):
    hub = LiveHub(site)  # never started: not connected
    client = create_app(site, store, hub, {"TESTING": True, "CSRF_ENABLED": False}).test_client()
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.get_json()["status"] == "degraded" and "mqtt" in r.get_json()["detail"]


def test_healthz_degraded_when_store_fails(client, monkeypatch):
    def broken(self):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(SqliteStore, "conn", property(broken))
    r = client.get("/healthz")
    assert r.status_code == 503 and "store" in r.get_json()["detail"]


def test_errors_are_json(site, store, tokens):
    app = create_app(site, store, None, {"TESTING": True, "CSRF_ENABLED": False})

    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/boom", "boom", boom)
    client = app.test_client()
    assert assert_error(client.get("/api/v1/nothing-here"), 404)["error"] == "not_found"
    r = client.delete("/api/v1/rooms", headers=auth(tokens["admin"]))
    assert_error(r, 405)
    assert "GET" in r.headers["Allow"]
    body = assert_error(client.get("/api/v1/boom"), 500)
    assert "secret internals" not in body["detail"]
    big = {"occupancy": 1, "reason": "x" * 70_000}
    assert_error(client.post("/api/v1/rooms/hall/adjust", json=big, headers=auth(tokens["staff"])), 413)
