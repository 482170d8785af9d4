"""Fixtures and helpers shared by the web tests: the reference site on a real SQLite file, a fixed clock."""

from __future__ import annotations

import datetime as dt

import pytest

from footfall.clock import format_ts
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import create_token
from footfall.server.web.live import LocalHub
from tests.conftest import example_site

# 10:00 in Beijing; the example site's business day starts at 04:00.
NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 28)


@pytest.fixture
def site(tmp_path):
    return example_site(tmp_path / "data")


@pytest.fixture
def store(site):
    s = SqliteStore(site.db_path)
    yield s
    s.close()


@pytest.fixture
def hub():
    return LocalHub()


@pytest.fixture
def app(site, store, hub):
    return create_app(
        site,
        store,
        hub,
        {"TESTING": True, "CSRF_ENABLED": False, "FOOTFALL_NOW": lambda: NOW, "SSE_PING_S": 0},
    )


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tokens(store):
    return {role: create_token(store, role, f"{role}-label") for role in ("viewer", "staff", "admin")}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event_row(device: str, id_: str, ts: dt.datetime, **fields) -> dict:
    row = {
        "device": device, "id": id_, "seq": 0, "type": "crossing", "ts": format_ts(ts), "device_ts": format_ts(ts),
        "received_at": format_ts(ts), "day": TODAY.isoformat(), "clock_flag": None, "door": None, "direction": None,
        "count": None, "purpose": None, "adults": None, "children": None, "activity": None, "member": None, "room": None,
    }  # fmt: skip
    row.update(fields)
    return row


def add_crossings(store, items):
    with store.transaction() as tx:
        for index, (device, direction, count, minute) in enumerate(items):
            ts = NOW - dt.timedelta(minutes=minute)
            tx.insert_event(event_row(device, f"c{index}", ts, direction=direction, count=count))


def assert_error(response, status: int):
    assert response.status_code == status, response.data
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error", "detail"}
    assert body["error"] and isinstance(body["detail"], str)
    assert "Traceback" not in response.get_data(as_text=True)
    return body
