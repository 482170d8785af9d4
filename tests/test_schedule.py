"""The schedule: validation, CRUD over the API (staff edits, viewers read), the page form, the retained kiosk
message, and attendance recounted when an item changes."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from footfall.kiosk.schedule import parse_schedule
from footfall.server.reports import report, rollup_pending
from footfall.server.schedule import (
    ScheduleError,
    kiosk_payload,
    publish_schedule,
    schedule_message,
    validate,
)
from footfall.server.web import create_app
from footfall.server.web.auth import add_user, create_token
from footfall.server.web.live import LocalHub

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing
TODAY = "2026-11-28"
ITEM = {"title": "书法课", "title_en": "Calligraphy", "kind": "class", "room": "classroom", "date": TODAY,
        "start": "14:00", "end": "15:30", "capacity": 25}  # fmt: skip


class LinkedHub(LocalHub):
    """A hub with a (recorded) MQTT link: the web asks ingest, the only publisher, to republish the schedule."""

    mqtt = True

    def __init__(self):
        super().__init__()
        self.asked = []

    def ask_ingest(self, command):
        self.asked.append(command)


@pytest.fixture
def hub():
    return LinkedHub()


@pytest.fixture
def client(site, store, hub):
    app = create_app(site, store, hub, {"TESTING": True, "FOOTFALL_NOW": lambda: NOW, "CSRF_ENABLED": False})
    return app.test_client()


@pytest.fixture
def tokens(store):
    return {role: create_token(store, role, role) for role in ("viewer", "staff")}


def auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"title": ""}, "title"),
        ({"kind": "party"}, "kind"),
        ({"room": "roof"}, "room"),
        ({"date": "2026-13-01"}, "date"),
        ({"start": "9:00"}, "start"),
        ({"end": "13:00"}, "end"),
        ({"capacity": -1}, "capacity"),
        ({"kind": "joint"}, "partner"),
        ({"title": "x" * 101}, "title"),
    ],
)
def test_validation_names_the_bad_field(site, change, field):
    with pytest.raises(ScheduleError) as info:
        validate({**ITEM, **change}, site)
    assert info.value.field == field


def test_capacity_defaults_to_the_room(site):
    assert validate({**ITEM, "capacity": None}, site)["capacity"] == 50


def test_crud_roles_and_the_retained_kiosk_message(client, tokens, hub, site, store):
    staff, viewer = auth(tokens["staff"]), auth(tokens["viewer"])
    assert client.post("/api/v1/schedule", json=ITEM, headers=viewer).status_code == 403
    created = client.post("/api/v1/schedule", json={**ITEM, "id": "calligraphy-1"}, headers=staff)
    assert created.status_code == 201
    assert (
        client.post("/api/v1/schedule", json={**ITEM, "id": "calligraphy-1"}, headers=staff).status_code
        == 409
    )
    bad = client.post("/api/v1/schedule", json={**ITEM, "room": "roof"}, headers=staff)
    assert (
        bad.status_code == 422 and bad.get_json()["error"] == "invalid" and "room" in bad.get_json()["detail"]
    )

    def republished():
        """The command the web sent, then what ingest publishes retained when it gets it."""
        assert hub.asked.pop() == {"v": 1, "cmd": "republish-schedule"}
        return schedule_message(site, store, NOW)

    topic, payload = republished()
    assert topic == "footfall/dongsi/schedule"
    message = json.loads(payload)
    assert message["date"] == TODAY
    assert message["items"] == [{"id": "calligraphy-1", "title": "书法课", "title_en": "Calligraphy", "kind": "class",
                                 "room": "classroom", "start": "14:00", "end": "15:30", "capacity": 25,
                                 "category": "class"}]  # fmt: skip
    assert parse_schedule(payload)["items"][0]["id"] == "calligraphy-1"  # the kiosk accepts it
    changed = client.patch("/api/v1/schedule/calligraphy-1", json={"kind": "workshop"}, headers=staff)
    assert changed.status_code == 200 and changed.get_json()["kind"] == "workshop"
    assert json.loads(republished()[1])["items"][0]["kind"] == "activity"
    listed = client.get(f"/api/v1/schedule?from={TODAY}&to={TODAY}", headers=viewer).get_json()
    assert [i["id"] for i in listed] == ["calligraphy-1"]
    assert client.delete("/api/v1/schedule/calligraphy-1", headers=staff).status_code == 200
    assert json.loads(republished()[1])["items"] == []
    assert client.delete("/api/v1/schedule/calligraphy-1", headers=staff).status_code == 404
    assert client.get("/api/v1/schedule?from=x", headers=viewer).status_code == 400


def test_schedule_page_form_adds_edits_and_deletes(client, store):
    add_user(store, "staff", "staff-password", "staff")
    client.post("/login", data={"username": "staff", "password": "staff-password"})
    page = client.get(f"/schedule?from={TODAY}")
    assert page.status_code == 200 and "新增安排" in page.get_data(as_text=True)
    form = {**ITEM, "capacity": "30", "title": "太极拳"}
    assert client.post(f"/schedule?from={TODAY}", data=form).status_code == 302
    text = client.get(f"/schedule?from={TODAY}").get_data(as_text=True)
    assert "太极拳" in text
    item_id = store.conn.execute("SELECT id FROM schedule").fetchone()[0]
    assert client.post("/schedule", data={**form, "id": item_id, "end": "13:00"}).status_code == 422
    assert client.post("/schedule", data={**form, "id": item_id, "title": "太极拳进阶"}).status_code == 302
    assert store.conn.execute("SELECT title FROM schedule").fetchone()[0] == "太极拳进阶"
    assert client.post("/schedule", data={"id": item_id, "action": "delete"}).status_code == 302
    assert store.count("schedule") == 0


def test_publish_without_a_link_is_a_no_op(site, store):
    assert publish_schedule(site, store, LocalHub(), NOW) is False
    assert kiosk_payload([], dt.date(2026, 11, 28)) == {"v": 1, "date": TODAY, "items": []}


def test_editing_a_past_item_recounts_its_attendance(site, store, client, tokens):
    from tests.test_rollup import checkin_row, insert

    staff = auth(tokens["staff"])
    past = "2026-11-20"
    client.post("/api/v1/schedule", json={**ITEM, "id": "c-1", "date": past}, headers=staff)
    insert(
        store, [checkin_row("k1", dt.datetime(2026, 11, 20, 6, 5, tzinfo=dt.UTC), activity="c-1", adults=2)]
    )
    rollup_pending(site, store, NOW)
    rep = report(site, store, "daily", dt.date(2026, 11, 20), NOW)
    assert rep["headline"]["classes_held"] == 1 and rep["headline"]["class_attendance"] == 2
    client.patch("/api/v1/schedule/c-1", json={"kind": "themed"}, headers=staff)
    rep = report(site, store, "daily", dt.date(2026, 11, 20), NOW)
    assert rep["headline"]["classes_held"] == 0 and rep["headline"]["activity_participants"] == 2
