"""The store suite, run on both backends (#14 item 1): SQLite (a real file) and PostgreSQL (a throwaway cluster,
tests/pg.py). Each test goes through the modules that hold the server's logic (ingest, reports, schedule, alerts,
webhooks, audit, accounts), so every query they make runs on both engines."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from pathlib import Path

import psycopg
import pytest

from footfall.clock import format_ts
from footfall.errors import StoreError
from footfall.server import audit, schedule
from footfall.server.alerting import clear_alerts, raise_alert
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.occupancy import RoomCounts
from footfall.server.pg_migrations import MIGRATIONS
from footfall.server.reports import apply_retention, compute_day, report, rollup_pending
from footfall.server.store import SqliteStore, open_store, store_unavailable
from footfall.server.store_pg import PgStore
from footfall.server.web.auth import create_token, hash_token
from footfall.server.webhooks import Deliverer, pending_deliveries
from footfall.site import Webhook
from tests.conftest import EXAMPLE_SITE, example_site
from tests.webkit import event_row

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing; the business day starts at 04:00
DAY = dt.date(2026, 11, 20)
EVENT = "footfall/dongsi/device/{}/event"


@pytest.fixture
def site(tmp_path):
    return example_site(tmp_path / "data")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def store(request, backend, site):
    if backend == "sqlite":
        s = open_store(site)
    else:
        url = request.getfixturevalue("postgres").create_database(f"t{uuid.uuid4().hex[:12]}")
        s = open_store(dataclasses.replace(site, server=dataclasses.replace(site.server, database=url)))
    assert s.backend == backend
    yield s
    s.close()


def at(hour: float, day: dt.date = DAY) -> dt.datetime:
    """`hour` o'clock Beijing time on `day`."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=hour - 8)


def crossing(device: str, event_id: str, seq: int, when: dt.datetime, direction: str = "in", count: int = 1):
    body = {
        "v": 1,
        "id": event_id,
        "seq": seq,
        "ts": format_ts(when),
        "type": "crossing",
        "direction": direction,
    }
    return Incoming(EVENT.format(device), json.dumps({**body, "count": count}).encode())


def checkin(event_id: str, seq: int, when: dt.datetime, member: str | None = None):
    body = {"v": 1, "id": event_id, "seq": seq, "ts": format_ts(when), "type": "checkin", "purpose": "reading",
            "adults": 1, "children": 1, **({"member": member} if member else {})}  # fmt: skip
    return Incoming(EVENT.format("kiosk-hall"), json.dumps(body).encode())


# --- ingest ---------------------------------------------------------------------------------------------------


def test_ingest_stores_each_event_once_and_counts_rooms(store, site):
    ingestor = Ingestor(site, store)
    batch = [crossing("door-main", f"e{i}", i, NOW - dt.timedelta(minutes=30 - i)) for i in range(1, 21)]
    ingestor.process(batch + batch[:5], NOW)  # repeats inside the batch
    ingestor.process(batch[10:], NOW)  # and of events already stored
    assert store.count("events") == 20
    assert store.metrics()["events"] == 20 and store.metrics()["duplicates"] == 15
    hall = store.rooms_live()["hall"]
    assert (hall.entries, hall.occupancy) == (20, 20)
    assert store.stored_event_keys([("door-main", "e1"), ("door-main", "nope")]) == {("door-main", "e1")}
    assert [d["id"] for d in store.devices() if d["state"] == "online"] == ["door-main"]
    assert store.highest_seq("door-main") == 20 and store.seq_taken("door-main", 3, "other")
    assert store.seqs_taken("door-main", [(3, "other"), (3, "e3"), (99, "x"), (4, "e4")]) == {(3, "other")}


def test_bulk_insert_drops_repeats_in_the_database(store):
    rows = [event_row("door-main", f"b{i}", NOW, seq=i, direction="in", count=1) for i in range(2500)]
    with store.transaction() as tx:
        tx.insert_events(rows[:1500])
    with store.transaction() as tx:
        tx.insert_events(rows)  # 1,500 of them stored already: no error, stored once
    assert store.count("events") == 2500
    assert store.count("events", "device=? AND seq >= ?", ("door-main", 2000)) == 500


def test_insert_new_events_says_which_it_inserted(store):
    rows = [event_row("door-main", f"n{i}", NOW, seq=i, direction="in", count=1) for i in range(600)]
    with store.transaction() as tx:
        assert tx.insert_new_events(rows[:400]) == {("door-main", f"n{i}") for i in range(400)}
    with store.transaction() as tx:
        assert tx.insert_new_events(rows) == {("door-main", f"n{i}") for i in range(400, 600)}
        assert tx.insert_new_events([]) == set()
    assert store.count("events") == 600


def test_a_late_event_recounts_its_room_and_a_past_day_is_rolled_up(store, site):
    ingestor = Ingestor(site, store)
    ingestor.process([crossing("door-main", "a", 1, NOW - dt.timedelta(minutes=5))], NOW)
    ingestor.process([crossing("door-main", "b", 2, NOW - dt.timedelta(minutes=50))], NOW)  # earlier: recount
    assert store.rooms_live()["hall"].entries == 2
    with store.transaction() as tx:
        tx.add_adjustment("hall", NOW, "ana", 2, 0, "count reset")
    ingestor.process([crossing("door-main", "c", 3, NOW - dt.timedelta(minutes=1))], NOW)
    assert store.rooms_live()["hall"].entries == 3 and store.adjustments()[0]["user"] == "ana"


def test_dead_letters_are_kept_counted_and_pruned(store, site):
    ingestor = Ingestor(site, store)
    bad = [Incoming(EVENT.format("door-main"), b"\x00 not json " + bytes([i])) for i in range(3)]
    ingestor.process_guarded(bad, NOW)
    letters = store.dead_letters()
    assert len(letters) == 3 and all(
        letter["size"] == 12 and letter["excerpt"][1:].startswith(" not json") for letter in letters
    )
    assert store.dead_letter_counts()[0]["stored"] == 3
    with store.transaction() as tx:
        assert tx.prune_dead_letters(1) == 2
    assert store.count("dead_letters") == 1


def test_device_status_and_health_round_trip(store):
    with store.transaction() as tx:
        tx.upsert_device("door-main", {"state": "online", "last_seq": 7, "health": {"cpu": 0.5}})
        tx.upsert_device("door-main", {"state": "offline", "health": {"cpu": 0.25}})
    [device] = store.devices()
    assert device["state"] == "offline" and device["last_seq"] == 7 and device["health"] == {"cpu": 0.25}
    assert store.device_last_seq("door-main") == 7


def test_room_counts_round_trip(store):
    counts = RoomCounts(
        day=NOW.date(), occupancy=3, raw_net=4, corrected=-1, entries=5, exits=2, peak=4, peak_at=NOW
    )
    with store.transaction() as tx:
        tx.put_room_counts("hall", counts, NOW)
        tx.put_room_counts("hall", dataclasses.replace(counts, occupancy=2), NOW)
    assert store.room_counts("hall") == dataclasses.replace(counts, occupancy=2)
    store.ping()


# --- reports, schedule ----------------------------------------------------------------------------------------


def test_rollup_report_and_retention(store, site):
    ingestor = Ingestor(site, store)
    day_now = at(12)
    ingestor.process(
        [
            crossing("door-main", "v1", 1, at(9), "in", 2),
            crossing("door-main", "v2", 2, at(10), "out", 2),
            checkin("k1", 1, at(9.5), member="202400174"),
        ],
        day_now,
    )
    item = schedule.create_item(
        store, site, {"title": "读书会", "kind": "activity", "room": "book-bar", "date": DAY.isoformat(),
                      "start": "09:00", "end": "11:00"}, day_now)  # fmt: skip
    assert rollup_pending(site, store, NOW) == [DAY]
    assert rollup_pending(site, store, NOW) == []  # nothing new
    rep = report(site, store, "daily", DAY, NOW)
    assert rep["headline"]["visits"] == 2 and rep["headline"]["checkins"] == 1
    assert rep["activities"][0]["title"] == "读书会"
    assert compute_day(site, store, DAY).visits == 2
    schedule.update_item(store, site, item["id"], {"title": "书会"}, NOW)
    assert rollup_pending(site, store, NOW) == [DAY]  # an edit re-opens its day
    # A year later the member code goes, the day's figures stay.
    later = NOW + dt.timedelta(days=200)
    assert apply_retention(site, store, later) == {"members_removed": 1, "events_deleted": 0}
    assert store.stored_days(DAY.isoformat(), DAY.isoformat())[DAY].identified == 1
    assert apply_retention(site, store, NOW + dt.timedelta(days=500))["events_deleted"] == 3
    assert report(site, store, "daily", DAY, later)["headline"]["visits"] == 2


def test_schedule_items(store, site):
    body = {"id": "talk-1", "title": "讲座", "kind": "class", "room": "hall", "date": "2026-12-01",
            "start": "14:00", "end": "15:00"}  # fmt: skip
    schedule.create_item(store, site, body, NOW)
    with pytest.raises(schedule.ScheduleError):
        schedule.create_item(store, site, body, NOW)
    assert schedule.update_item(store, site, "talk-1", {"end": "16:00"}, NOW)["end"] == "16:00"
    assert [i["id"] for i in schedule.list_items(store, dt.date(2026, 12, 1), dt.date(2026, 12, 1))] == [
        "talk-1"
    ]
    assert schedule.delete_item(store, "talk-1")["id"] == "talk-1"
    assert schedule.get_item(store, "talk-1") is None


# --- alerts, webhooks, accounts, audit ------------------------------------------------------------------------


def test_alerts_join_clear_and_reach_webhooks(store, site):
    with store.transaction() as tx:
        first, opened = raise_alert(tx, "offline", "door-main", "gone", NOW)
        again, reopened = raise_alert(tx, "offline", "door-main", "still gone", NOW)
    assert opened and not reopened and first == again
    assert store.alert(first)["calls"] == 2 and store.open_alert_counts() == [("offline", 1)]
    sent = []
    hooks = (Webhook(name="ops", url="http://127.0.0.1:9/hook", format="generic", secret=None, kinds=None),)
    deliverer = Deliverer(
        dataclasses.replace(site, webhooks=hooks), store, sender=lambda *args: sent.append(args) or (200, "")
    )
    deliverer.run_once(NOW)
    with store.transaction() as tx:
        assert clear_alerts(tx, NOW, "ana", pks=[first]) == [first]
    deliverer.run_once(NOW)
    assert len(sent) == 2 and pending_deliveries(store) == 0 and store.open_alerts() == []
    assert store.metrics()["webhook_delivered"] == 2


def test_users_tokens_and_audit(store):
    store.put_user("ana", "hash-1", "staff", NOW)
    store.put_user("ana", "hash-2", "admin", NOW)  # a new password or role ends her sessions
    user = store.get_user("ana")
    assert (user["password_hash"], user["role"], user["session_version"]) == ("hash-2", "admin", 1)
    store.end_sessions("ana")
    assert store.get_user("ana")["session_version"] == 2 and [u["username"] for u in store.users()] == ["ana"]
    token = create_token(store, "viewer", "lobby screen")
    assert store.token_role(hash_token(token)) == ("viewer", "lobby screen")
    audit.record(store, "ana", "login", ip="10.0.0.1", now=NOW)
    audit.record(store, "ana", "export", "annual", detail={"rows": 3}, now=NOW)
    assert [e["action"] for e in audit.entries(store)] == ["export", "login"]
    assert audit.entries(store, action="export")[0]["detail"] == {"rows": 3}
    with store.transaction() as tx:
        assert tx.delete_user("ana") and not tx.delete_user("ana")


# --- backends themselves --------------------------------------------------------------------------------------


def test_the_site_file_or_the_environment_chooses_postgresql(postgres, site, monkeypatch):
    from footfall.site import load_site

    url = postgres.create_database("chosen")
    path = site.data_dir.parent / "site.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{site.data_dir}"')
    path.write_text(text)
    assert isinstance(open_store(load_site(str(path))), SqliteStore)
    monkeypatch.setenv("FOOTFALL_SERVER_DATABASE", url)
    assert isinstance(open_store(load_site(str(path))), PgStore)
    monkeypatch.delenv("FOOTFALL_SERVER_DATABASE")
    path.write_text(text.replace("[server]\n", f'[server]\ndatabase = "{url}"\n', 1))
    assert load_site(str(path)).server.database == url and isinstance(
        open_store(load_site(str(path))), PgStore
    )


def test_postgresql_migrations_are_versioned_and_applied_once(postgres):
    url = postgres.create_database("versions")
    first = PgStore(url)
    assert first.migrate() == []  # the constructor applied them
    versions = [r[0] for r in first.conn.execute("SELECT version FROM footfall_migrations ORDER BY version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert PgStore(url).migrate() == []


def test_an_unreachable_postgresql_is_one_clear_error(postgres):
    with pytest.raises(StoreError) as err:
        PgStore(f"postgresql://postgres:secret@127.0.0.1:{postgres.port}/no_such_db")
    assert "no_such_db" in str(err.value) and "secret" not in str(err.value)


def test_a_lost_postgresql_connection_counts_as_the_store_unavailable(postgres):
    store = PgStore(postgres.create_database("lost"))
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'lost'")
    with pytest.raises(psycopg.Error) as err, store.transaction() as tx:
        tx.bump("events")
    assert store_unavailable(err.value)
    store.close()  # what ingest does before it retries: a fresh connection
    with store.transaction() as tx:
        tx.bump("events")
    assert store.metrics() == {"events": 1}


def test_every_sql_statement_of_the_site_server_is_in_the_store():
    """No module of the site server outside the store's own (server/store*.py, the migrations) runs SQL; the
    district's modules have their own store (server/district_store.py)."""
    server = Path(__file__).resolve().parents[1] / "server"
    sql = re.compile(r"\.execute(many|script)?\(|\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    outside = [
        f"{path.relative_to(server)}:{n}"
        for path in sorted(server.rglob("*.py"))
        if not path.name.startswith(("store", "migrations", "pg_migrations", "district"))
        and "district_web" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if sql.search(line)
    ]
    assert outside == []
