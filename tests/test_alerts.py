"""Call staff: a kiosk's help event becomes an alert that staff see and clear (ingest + web, real SQLite)."""

from __future__ import annotations

import datetime as dt

from footfall.messages import Help
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import add_user, create_token
from footfall.site import load_site
from tests.conftest import EXAMPLE_SITE

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
TOPIC = "footfall/dongsi/device/kiosk-hall/event"


def test_help_alert_is_listed_until_staff_clear_it(tmp_path):
    site = load_site(EXAMPLE_SITE)
    store = SqliteStore(tmp_path / "f.db")
    ingestor = Ingestor(site, store)
    help_event = Help(id="h1", seq=5, ts=NOW)
    ingestor.process([Incoming(TOPIC, help_event.encode()), Incoming(TOPIC, help_event.encode())], NOW)
    assert ingestor.alerts_changed
    # A counter cannot call for help.
    ingestor.process(
        [Incoming("footfall/dongsi/device/door-main/event", Help(id="h2", seq=1, ts=NOW).encode())], NOW
    )
    assert "not a kiosk" in store.dead_letters()[0]["reason"]

    app = create_app(site, store, None, {"TESTING": True, "CSRF_ENABLED": False, "FOOTFALL_NOW": lambda: NOW})
    client = app.test_client()
    viewer = {"Authorization": f"Bearer {create_token(store, 'viewer', 'screen')}"}
    listed = client.get("/api/v1/alerts", headers=viewer).get_json()["alerts"]
    assert [(a["device"], a["room"]) for a in listed] == [
        ("kiosk-hall", "hall")
    ]  # the duplicate made one alert
    pk = listed[0]["id"]
    assert client.post(f"/api/v1/alerts/{pk}/clear", headers=viewer).status_code == 403

    add_user(store, "wang", "correct-horse", "staff")
    assert client.post("/login", data={"username": "wang", "password": "correct-horse"}).status_code == 302
    assert client.post(f"/api/v1/alerts/{pk}/clear").get_json() == {"v": 1, "alerts": [], "cleared": [pk]}
    again = client.post(f"/api/v1/alerts/{pk}/clear")
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"
    assert client.post("/api/v1/alerts/999/clear").status_code == 404
    assert store.alert(pk)["cleared_by"] == "wang"
    assert "alerts-title" in client.get("/").get_data(as_text=True)
