"""The alert API (server.alerting) on a real SQLite store: one open alert per kind and device, notices for the
webhooks written in the same transaction, clears one by one or in bulk, and help calls rate-limited per kiosk."""

from __future__ import annotations

import datetime as dt

from footfall.messages import Help
from footfall.server.alerting import SITE_WIDE, alerts_payload, clear_alert, clear_alerts, raise_alert
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import SqliteStore
from footfall.site import load_site
from tests.conftest import EXAMPLE_SITE

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
KIOSK_TOPIC = "footfall/dongsi/device/kiosk-hall/event"


def notices(store):
    return [tuple(r) for r in store.conn.execute("SELECT alert, what FROM alert_notices ORDER BY pk")]


def test_raise_joins_the_open_alert_and_clear_ends_it(tmp_path):
    store = SqliteStore(tmp_path / "f.db")
    with store.transaction() as tx:
        first = raise_alert(tx, "device_offline", "door-main", "no word for 5 min", NOW, room=None)
        again = raise_alert(
            tx, "device_offline", "door-main", "no word for 6 min", NOW + dt.timedelta(minutes=1)
        )
        disk = raise_alert(tx, "disk_low", SITE_WIDE, "300 MB free", NOW)
    assert first[1] is True and again == (first[0], False) and disk[1] is True
    [offline, low] = alerts_payload(store)["alerts"]
    assert (offline["kind"], offline["calls"], offline["message"]) == (
        "device_offline",
        2,
        "no word for 6 min",
    )
    assert offline["last_at"] > offline["raised_at"] and low["device"] == ""
    assert notices(store) == [(first[0], "raised"), (disk[0], "raised")]  # the join wrote no second notice
    with store.transaction() as tx:
        assert clear_alert(tx, "device_offline", "door-main", NOW) == [first[0]]
        assert clear_alert(tx, "device_offline", "door-main", NOW) == []
    assert [a["kind"] for a in alerts_payload(store)["alerts"]] == ["disk_low"]
    assert notices(store)[-1] == (first[0], "cleared")
    with store.transaction() as tx:  # after a clear, the same condition opens a new alert
        assert raise_alert(tx, "device_offline", "door-main", "gone again", NOW)[1] is True


def test_a_failed_transaction_leaves_no_alert_and_no_notice(tmp_path):
    store = SqliteStore(tmp_path / "f.db")
    try:
        with store.transaction() as tx:
            raise_alert(tx, "help", "kiosk-hall", "help call", NOW)
            raise RuntimeError("the batch failed")
    except RuntimeError:
        pass
    assert alerts_payload(store)["alerts"] == [] and notices(store) == []


def test_bulk_clear_by_kind_device_or_ids(tmp_path):
    store = SqliteStore(tmp_path / "f.db")
    with store.transaction() as tx:
        pks = [
            raise_alert(tx, "device_offline", d, "x", NOW)[0]
            for d in ("door-main", "door-meeting", "door-classroom")
        ]
        help_pk = raise_alert(tx, "help", "kiosk-hall", "help call", NOW)[0]
    with store.transaction() as tx:
        assert clear_alerts(tx, NOW, "wang", pks=[pks[0]]) == [pks[0]]
        assert clear_alerts(tx, NOW, "wang", kind="device_offline") == pks[1:]
        assert clear_alerts(tx, NOW, "wang", pks=[]) == []
        assert clear_alerts(tx, NOW, "wang") == [help_pk]
    assert store.alert(help_pk)["cleared_by"] == "wang" and alerts_payload(store)["alerts"] == []


def test_three_thousand_help_taps_open_one_alert_per_kiosk(tmp_path):
    site = load_site(EXAMPLE_SITE)
    store = SqliteStore(tmp_path / "f.db")
    ingestor = Ingestor(site, store)
    batch = [Incoming(KIOSK_TOPIC, Help(id=f"h{i}", seq=i + 1, ts=NOW).encode()) for i in range(3000)]
    ingestor.process(batch, NOW)
    [alert] = alerts_payload(store)["alerts"]
    assert (alert["kind"], alert["device"], alert["room"], alert["calls"]) == (
        "help",
        "kiosk-hall",
        "hall",
        3000,
    )
    assert store.count("events", "type='help'") == 3000  # every call is still stored and confirmed
    assert len(notices(store)) == 1  # one webhook message, not 3,000
