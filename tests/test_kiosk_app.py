"""Kiosk app units: the flow endpoints, the duplicate-activity check, help, staff mode, schedule, config errors."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from footfall import member_code
from footfall.errors import ConfigError
from footfall.kiosk.app import create_app, load_catalogs
from footfall.kiosk.camera import decode_qr, ffmpeg_frame_source
from footfall.kiosk.cli import kiosk as kiosk_command
from footfall.kiosk.config import kiosk_config_from_dict, load_kiosk_config
from footfall.kiosk.flow import normalize_member
from footfall.kiosk.local import LocalState
from footfall.kiosk.pin import hash_pin
from footfall.kiosk.schedule import open_items, parse_schedule
from footfall.levels import LEVELS, WORDS
from footfall.messages import decode_event
from footfall.server.web.i18n import catalog as server_catalog

ROOT = Path(__file__).resolve().parents[1]
# 2026-11-28 09:30 in Beijing
NOW = dt.datetime(2026, 11, 28, 1, 30, tzinfo=dt.UTC)
PIN = "3071"
PIN_HASH = hash_pin(PIN)  # scrypt: made once for every test here
MEMBER, MEMBER2 = member_code.make(20240017), member_code.make(20240018)


def make_config(tmp_path, port: int = 1883, **kiosk):
    raw = {
        "device": {"id": "kiosk-hall", "site": "dongsi", "clock": "synced"},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "kiosk": {"data_dir": str(tmp_path / "kiosk"), "staff_pin_hash": PIN_HASH, **kiosk},
    }
    return kiosk_config_from_dict(raw, env={})


def schedule_payload(date: str = "2026-11-28") -> bytes:
    items = [
        {
            "id": "calligraphy-am",
            "title": "书法课",
            "title_en": "Calligraphy",
            "kind": "class",
            "room": "classroom",
            "start": "09:00",
            "end": "10:30",
            "capacity": 30,
        },
        {
            "id": "tai-chi",
            "title": "太极拳",
            "title_en": "Tai chi",
            "kind": "activity",
            "room": "culture-sports",
            "start": "10:00",
            "end": "11:00",
            "capacity": 40,
        },
        {
            "id": "early",
            "title": "晨练",
            "kind": "activity",
            "room": "multi-purpose",
            "start": "06:00",
            "end": "07:00",
        },
        {
            "id": "parent-child",
            "title": "亲子手工",
            "title_en": "Parent-child crafts",
            "kind": "activity",
            "room": "parent-child",
            "start": "14:00",
            "end": "16:00",
            "capacity": 20,
        },
    ]
    return json.dumps({"v": 1, "date": date, "items": items}, ensure_ascii=False).encode()


@pytest.fixture
def app(tmp_path):
    clock = {"now": NOW}
    application = create_app(
        make_config(tmp_path), test_config={"TESTING": True, "now": lambda: clock["now"]}
    )
    application.extensions["kiosk"].local.set_schedule(schedule_payload())
    application.clock = clock
    yield application
    application.extensions["kiosk"].runtime.outbox.close()
    application.extensions["kiosk"].local.close()


def client_of(app, **environ):
    """A test client that sends the kiosk's CSRF token with every request, as kiosk.js does."""
    client = app.test_client()
    client.environ_base.update({"HTTP_X_CSRF_TOKEN": app.extensions["kiosk"].guard.token, **environ})
    return client


def events(app) -> list[dict]:
    outbox = app.extensions["kiosk"].runtime.outbox
    return [json.loads(p.payload) for p in outbox.pending(0, 1000)]


def test_page_renders_in_chinese_with_both_catalogs(app):
    page = client_of(app).get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "kiosk.js" in page and "欢迎光临" in page  # the catalogs are embedded in the page


def test_catalogs_have_the_same_keys_and_cover_every_key_used():
    catalogs = load_catalogs()
    zh, en = catalogs["zh-CN"], catalogs["en"]
    # English has "one" plural forms that Chinese does not need (Intl.PluralRules("zh-CN") is always "other").
    assert zh.keys() == {k for k in en if not k.endswith("_one")}
    assert all(zh.values()) and all(en.values())
    source = (ROOT / "kiosk/templates/index.html").read_text() + (ROOT / "kiosk/static/kiosk.js").read_text()
    used = set(re.findall(r'data-i18n(?:-aria)?="([a-z_]+)"', source)) | set(
        re.findall(r'\bt\("([a-z_]+[a-z])"', source)
    )
    purposes = ("affairs", "class", "activity", "reading", "counselling", "culture", "other")
    used |= {f"purpose_{p}" for p in purposes} | {f"purpose_{p}_hint" for p in purposes}
    used |= {
        "level_busy",
        "level_full",
        "activity_title_class",
        "activity_title_activity",
        "floor_up",
        "floor_down",
    }
    used |= {"staff_link_connected", "staff_link_disconnected"}  # built from a prefix in kiosk.js
    used |= {"adults_other", "children_other"}  # plural("adults", n)
    assert used - zh.keys() == set()
    assert {"adults_one", "children_one"} <= en.keys()


def test_level_words_are_the_dashboards_and_the_lobbys():
    """One set of words for how full a room is, on the kiosk, the dashboard and the lobby screen."""
    for lang, words in WORDS.items():
        kiosk_words = {level: load_catalogs()[lang][f"level_{level}"] for level in LEVELS}
        server_words = {level: server_catalog(lang)[f"level.{level}"] for level in LEVELS}
        assert kiosk_words == server_words == words
    assert WORDS["zh-CN"] == {"ok": "有空位", "busy": "人较多", "full": "已满"}


def test_anonymous_checkin_goes_to_the_outbox_as_a_valid_event(app):
    r = client_of(app).post("/api/checkin", json={"purpose": "affairs", "adults": 2, "children": 1})
    assert r.status_code == 200 and r.json["status"] == "ok" and r.json["at"] == "09:30"
    (event,) = events(app)
    decoded = decode_event(json.dumps(event))
    assert (decoded.purpose, decoded.adults, decoded.children, decoded.member) == ("affairs", 2, 1, None)
    assert event["type"] == "checkin" and "clock" not in event


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "shopping", "adults": 1}, "purpose"),
        ({"purpose": "affairs", "adults": 0, "children": 0}, "adults"),
        ({"purpose": "affairs", "adults": 51}, "adults"),
        ({"purpose": "affairs", "adults": True}, "adults"),
        ({"purpose": "affairs", "children": -1}, "children"),
        ({"purpose": "class", "activity": "no-such-class"}, "activity"),
        ({"purpose": "affairs", "activity": "tai-chi"}, "activity"),
        ({"purpose": "reading", "member": "13812345678"}, "member"),
        ({"purpose": "reading", "member": "12"}, "member"),
    ],
)
def test_bad_checkins_are_refused_naming_the_field(app, body, field):
    r = client_of(app).post("/api/checkin", json=body)
    assert r.status_code == 422 and r.json["field"] == field and r.json["error"] == "invalid"
    assert events(app) == []


def test_non_json_checkin_is_a_json_error(app):
    r = client_of(app).post("/api/checkin", data="nope", content_type="text/plain")
    assert r.status_code == 422 and r.json["field"] == "body"


def test_activity_checkin_carries_the_activity_and_its_room(app):
    r = client_of(app).post("/api/checkin", json={"purpose": "activity", "adults": 1, "activity": "tai-chi"})
    assert r.json["status"] == "ok"
    event = events(app)[0]
    assert (event["activity"], event["room"], event["purpose"]) == ("tai-chi", "culture-sports", "activity")


def test_same_member_same_activity_same_day_is_a_friendly_duplicate(app):
    client = client_of(app)
    body = {"purpose": "class", "adults": 1, "activity": "calligraphy-am", "member": MEMBER}
    assert client.post("/api/checkin", json=body).json["status"] == "ok"
    app.clock["now"] = NOW + dt.timedelta(minutes=25)
    again = client.post("/api/checkin", json=body)
    assert again.status_code == 200 and again.json == {"status": "duplicate", "at": "09:30"}
    assert len(events(app)) == 1
    # the QR form of the same code is the same member
    qr_form = client.post("/api/checkin", json={**body, "member": f"footfall-member:{MEMBER}"})
    assert qr_form.json["status"] == "duplicate"
    # another activity, another member, or no member at all: new check-ins
    assert (
        client.post("/api/checkin", json={**body, "purpose": "activity", "activity": "tai-chi"}).json[
            "status"
        ]
        == "ok"
    )
    assert client.post("/api/checkin", json={**body, "member": MEMBER2}).json["status"] == "ok"
    anonymous = {k: v for k, v in body.items() if k != "member"}
    assert [client.post("/api/checkin", json=anonymous).json["status"] for _ in range(2)] == ["ok", "ok"]
    assert len(events(app)) == 5
    # remembered on disk, hashed (no member code at rest in the kiosk's own table)
    db = (Path(app.extensions["kiosk"].config.data_dir) / "kiosk.db").read_bytes()
    assert MEMBER.encode() not in db


def test_duplicate_memory_is_per_day_and_purged(app, tmp_path):
    client = client_of(app)
    body = {"purpose": "class", "adults": 1, "activity": "calligraphy-am", "member": MEMBER}
    client.post("/api/checkin", json=body)
    app.clock["now"] = NOW + dt.timedelta(days=1)
    app.extensions["kiosk"].local.set_schedule(schedule_payload("2026-11-29"))
    assert client.post("/api/checkin", json=body).json["status"] == "ok"
    assert app.extensions["kiosk"].local.purge(dt.date(2026, 11, 29)) == 1


def test_member_codes():
    assert normalize_member(f" {MEMBER} ") == MEMBER
    assert normalize_member(f"MEMBER:{MEMBER}") == MEMBER  # the QR form
    for bad in ("13912345678", "abc", "1234-5678", "", "张三12345", MEMBER[:-1] + "0"):
        with pytest.raises(Exception, match="member"):
            normalize_member(bad)


def test_help_is_sent_once_until_cleared(app):
    client = client_of(app)
    assert client.post("/api/help").json["status"] == "sent"
    assert client.post("/api/help").json["status"] == "already"
    (event,) = events(app)
    assert set(event) == {"v", "id", "seq", "ts", "type"} and event["type"] == "help" and event["v"] == 1
    kiosk = app.extensions["kiosk"]
    assert kiosk.health()["help"] == "pending"
    kiosk.runtime.commands["help-clear"]({"v": 1, "id": "c1", "cmd": "help-clear"})  # the server clears it
    assert kiosk.health()["help"] == "none"
    assert client.post("/api/help").json["status"] == "sent"
    assert [e["seq"] for e in events(app)] == [1, 2]


def test_state_shows_open_items_and_busy_rooms_only(app):
    local = app.extensions["kiosk"].local
    local.set_room(
        "classroom", json.dumps({"v": 1, "room": "classroom", "name": "综合教室", "level": "full"}).encode()
    )
    local.set_room("hall", json.dumps({"v": 1, "room": "hall", "name": "服务大厅", "level": "ok"}).encode())
    local.set_room("culture-sports", b"")  # a cleared retained message
    state = client_of(app).get("/api/state").json
    assert [i["id"] for i in state["items"]] == [
        "calligraphy-am",
        "tai-chi",
        "parent-child",
    ]  # 06:00 early is over
    assert state["items"][0]["level"] == "full"
    assert [r["room"] for r in state["rooms"]] == ["classroom"]
    assert state["day"] == "2026-11-28" and state["language"] == "zh-CN" and state["camera"] is False


def test_every_item_says_where_it_is_quiet_rooms_too(app):
    """The room's name and floor come from its retained state whatever its level; no state, no name (never an id)."""
    local = app.extensions["kiosk"].local
    quiet = {
        "v": 1,
        "room": "classroom",
        "name": "综合教室",
        "name_en": "General classroom",
        "level": "ok",
        "floor": 2,
    }
    local.set_room("classroom", json.dumps(quiet, ensure_ascii=False).encode())
    bad_floor = {"v": 1, "room": "culture-sports", "name": "文体活动室", "level": "busy", "floor": "two"}
    local.set_room("culture-sports", json.dumps(bad_floor, ensure_ascii=False).encode())
    items = {i["id"]: i for i in app.test_client().get("/api/state").json["items"]}
    where = {k: items["calligraphy-am"][k] for k in ("room_name", "room_name_en", "floor", "level")}
    assert where == {"room_name": "综合教室", "room_name_en": "General classroom", "floor": 2, "level": "ok"}
    assert (items["tai-chi"]["room_name"], items["tai-chi"]["floor"]) == ("文体活动室", None)
    assert items["parent-child"]["room_name"] is None  # no room state received yet


def test_schedule_is_cached_and_validated(tmp_path):
    local = LocalState(tmp_path)
    assert local.set_schedule(schedule_payload()) is True
    assert local.set_schedule(b'{"v":2}') is False and local.set_schedule(b"not json") is False
    local.close()
    again = LocalState(tmp_path)  # offline restart: the cached schedule is back
    assert again.schedule["date"] == "2026-11-28" and len(again.schedule["items"]) == 4
    again.close()
    parsed = parse_schedule(
        b'{"v":1,"date":"2026-11-28","items":[{"id":"a","title":"A","kind":"class","start":"09:00","end":"08:00"},'
        b'{"id":"b","title":"B","kind":"party","start":"09:00","end":"10:00"},'
        b'{"id":"c","title":"C","kind":"class","start":"09:00","end":"10:00","capacity":-1},'
        b'{"id":"d","title":"D","kind":"class","start":"9:00","end":"10:00"},'
        b'{"id":"e","title":"E","kind":"class","start":"09:00","end":"10:00"}]}'
    )
    assert [i["id"] for i in parsed["items"]] == ["e"] and parsed["items"][0]["title_en"] == "E"
    # What the server's schedule editor publishes: extra fields are ignored, a null title_en falls back to title.
    server_item = {
        "id": "s1",
        "title": "讲座",
        "title_en": None,
        "kind": "activity",
        "room": "meeting",
        "start": "14:00",
        "end": "15:00",
        "capacity": 40,
        "category": "lecture",
    }
    (item,) = parse_schedule(json.dumps({"v": 1, "date": "2026-11-28", "items": [server_item]}))["items"]
    assert item["title_en"] == "讲座" and "category" not in item
    assert open_items(parsed["items"], "10:01") == []


def test_stale_schedule_shows_nothing(app):
    app.extensions["kiosk"].local.set_schedule(schedule_payload("2026-11-27"))
    client = client_of(app)
    assert client.get("/api/state").json["items"] == []
    r = client.post("/api/checkin", json={"purpose": "class", "adults": 1, "activity": "calligraphy-am"})
    assert r.status_code == 422
    assert app.extensions["kiosk"].health()["schedule"] == "stale"


def test_staff_mode_needs_the_pin(app):
    client = client_of(app)
    assert client.get("/api/staff/status").status_code == 403
    assert client.post("/api/staff/login", json={"pin": "0000"}).status_code == 403
    token = client.post("/api/staff/login", json={"pin": PIN}).json["token"]
    client.post(
        "/api/checkin", json={"purpose": "class", "adults": 1, "activity": "tai-chi", "member": MEMBER}
    )
    status = client.get("/api/staff/status", headers={"X-Staff-Token": token}).json
    assert status["device"] == "kiosk-hall" and status["queue"] == 1 and status["link"] == "disconnected"
    assert status["last_events"][0]["member"] == "****" and status["last_events"][0]["purpose"] == "class"
    assert (
        client.post(
            "/api/staff/language", json={"language": "fr"}, headers={"X-Staff-Token": token}
        ).status_code
        == 422
    )
    assert client.post("/api/staff/language", json={"language": "en"}, headers={"X-Staff-Token": token}).json
    assert client.get("/api/state").json["language"] == "en"
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)
    client.post("/api/staff/logout", headers={"X-Staff-Token": token})
    assert client.get("/api/staff/status", headers={"X-Staff-Token": token}).status_code == 403


def test_wrong_pins_lock_the_pad(app):
    client = client_of(app)
    codes = [client.post("/api/staff/login", json={"pin": "1111"}).status_code for _ in range(6)]
    assert codes == [403] * 5 + [429]
    assert client.post("/api/staff/login", json={"pin": PIN}).status_code == 429


def test_qr_scan_decodes_in_memory(tmp_path):
    qr = cv2.QRCodeEncoder.create().encode(f"footfall-member:{MEMBER}")
    frame = cv2.cvtColor(
        cv2.resize(np.pad(qr, 4, constant_values=255), (240, 240), interpolation=cv2.INTER_NEAREST),
        cv2.COLOR_GRAY2BGR,
    )
    frames = [frame, np.full((240, 240, 3), 255, np.uint8), None]
    application = create_app(make_config(tmp_path), test_config={"frame_source": lambda: frames.pop(0)})
    client = client_of(application)
    assert client.get("/api/state").json["camera"] is True
    assert client.post("/api/scan").json == {"member": MEMBER}
    assert client.post("/api/scan").json == {"member": None}
    assert client.post("/api/scan").json == {"member": None}
    assert list((tmp_path / "kiosk").glob("*.png")) + list((tmp_path / "kiosk").glob("*.jpg")) == []
    no_camera = create_app(make_config(tmp_path / "other"))
    assert client_of(no_camera).post("/api/scan").status_code == 422


def test_camera_frames_come_from_ffmpeg_and_decode_without_opencv(tmp_path):
    """The kiosk box's frame source: one grey frame read by Debian's ffmpeg (here from a picture, on the Pi from
    /dev/video0), decoded by zxing-cpp; a source that fails gives no frame, not an error."""
    qr = cv2.QRCodeEncoder.create().encode("footfall-member:20240017")
    picture = tmp_path / "held-up.png"
    cv2.imwrite(str(picture), cv2.resize(np.pad(qr, 4, constant_values=255), (320, 240)))
    frame = ffmpeg_frame_source(size=(320, 240), input_args=["-i", str(picture)])()
    assert (frame.shape, decode_qr(frame)) == ((240, 320), "footfall-member:20240017")
    assert ffmpeg_frame_source(str(tmp_path / "no-such-camera"))() is None


@pytest.mark.parametrize(
    ("kiosk", "key", "problem"),
    [
        ({"listen": "0.0.0.0:8080"}, "kiosk.listen", "loopback"),
        ({"listen": "192.168.1.5:8080"}, "kiosk.listen", "loopback"),
        ({"listen": "8080"}, "kiosk.listen", "host:port"),
        ({"staff_pin": 2468}, "kiosk.staff_pin", "string"),
        ({"staff_pin": "135790"}, "kiosk.staff_pin", "footfall kiosk pin"),
        ({"staff_pin_hash": "135790"}, "kiosk.staff_pin_hash", "footfall kiosk pin"),
        ({"allowed_hosts": "localhost"}, "kiosk.allowed_hosts", "list"),
        ({"idle_seconds": 0}, "kiosk.idle_seconds", "greater than 0"),
        ({"language": "fr"}, "kiosk.language", "zh-CN"),
        ({"sound": "yes"}, "kiosk.sound", "true or false"),
        ({"timezone": "Mars/Olympus"}, "kiosk.timezone", "time zone"),
        ({"idle": 5}, "kiosk.idle", "unknown key"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, kiosk, key, problem):
    raw = {
        "device": {"id": "kiosk-hall", "site": "dongsi"},
        "mqtt": {"host": "192.168.1.10"},
        "kiosk": {"staff_pin_hash": PIN_HASH, **kiosk},
    }
    path = tmp_path / "kiosk.toml"
    path.write_text(_toml(raw))
    with pytest.raises(ConfigError) as info:
        load_kiosk_config(path, env={})
    assert info.value.key == key and problem in info.value.problem and str(path) in str(info.value)


def test_missing_pin_and_device_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"kiosk\.staff_pin_hash: is required: .*`footfall kiosk pin"):
        kiosk_config_from_dict(
            {"device": {"id": "kiosk-hall", "site": "dongsi"}, "mqtt": {"host": "h"}}, env={}
        )
    with pytest.raises(ConfigError, match=r"device\.id: is required"):
        kiosk_config_from_dict({"device": {"site": "dongsi"}, "kiosk": {"staff_pin_hash": PIN_HASH}}, env={})


def test_example_config_loads_and_cli_reports_errors(tmp_path):
    example = load_kiosk_config(ROOT / "deploy/examples/kiosk.toml", env={})
    assert (example.device.id, example.device.site, example.listen) == (
        "kiosk-hall",
        "dongsi",
        ("127.0.0.1", 8080),
    )
    bad = tmp_path / "kiosk.toml"
    bad.write_text(
        f'[device]\nid = "kiosk-hall"\nsite = "dongsi"\n[mqtt]\nhost = "h"\n[kiosk]\nstaff_pin_hash = "{PIN_HASH}"\nlisten = "0.0.0.0:80"\n'
    )
    result = CliRunner().invoke(kiosk_command, ["-c", str(bad)])
    assert result.exit_code != 0 and "kiosk.listen" in result.output and "Traceback" not in result.output
    assert "--config" in CliRunner().invoke(kiosk_command, ["--help"]).output


def _toml(raw: dict) -> str:
    lines = []
    for section, table in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
