"""Edges that never fail quietly, server side: an unknown device, a wrong site, two devices sharing an id, a clock
that drifts and an outbox that lost its events each become a staff alert, and the device logs why; end to end with
real Mosquitto, the real ingest process and the real edge runtime."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from footfall import edge
from footfall.clock import utcnow
from footfall.edge import EdgeRuntime
from footfall.messages import Crossing, DeviceStatus
from footfall.outbox import Outbox, OutboxDamaged
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import SqliteStore
from footfall.site import load_site
from tests.conftest import door_runtime, footfall_env, wait_server_online, wait_until

pytestmark = pytest.mark.integration


def open_alerts(db) -> dict[tuple[str, str], str]:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            rows = conn.execute(
                "select kind, device, message from alerts where cleared_at is null"
            ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {(kind, device): message for kind, device, message in rows}


def stored(db, sql: str):
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture
def server(broker, site_file, procs, tmp_path):
    procs("server", "-c", str(site_file), "--only", "ingest", env=footfall_env(broker), name="ingest")
    wait_server_online(broker)
    return tmp_path / "data" / "footfall.db"


@pytest.fixture
def devices(broker, tmp_path):
    started: list[EdgeRuntime] = []

    def start(device: str = "door-main", site: str = "dongsi", outbox: str | None = None) -> EdgeRuntime:
        path = tmp_path / (outbox or f"outbox-{device}-{len(started)}.db")
        runtime = door_runtime(path, broker.port, device=device, site=site).start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        if runtime._pump.is_alive():
            runtime.stop()


def crossing(runtime: EdgeRuntime, n: int = 1) -> None:
    for _ in range(n):
        runtime.emit(lambda **kw: Crossing(**kw, direction="in"))


def test_unknown_device_is_an_alert_and_the_device_is_told_why(server, devices, caplog):
    caplog.set_level(logging.ERROR, logger="footfall.edge")
    ghost = devices("door-ghost")
    crossing(ghost, 3)
    wait_until(
        lambda: ("unknown_device", "door-ghost") in open_alerts(server), 20, message="unknown_device alert"
    )
    assert "not in the site file" in open_alerts(server)[("unknown_device", "door-ghost")]
    wait_until(
        lambda: any("does not count this device's events" in r.getMessage() for r in caplog.records),
        20,
        message="the device logs why",
    )
    assert ghost.outbox.queue == 3  # nothing confirmed, nothing deleted: counted once the site file knows it


def test_wrong_site_is_an_alert_and_the_device_says_it_sees_no_server(server, devices, caplog, monkeypatch):
    monkeypatch.setattr(edge, "NO_SERVER_WARN_S", 1.0)
    caplog.set_level(logging.ERROR, logger="footfall.edge")
    lost = devices("door-main", site="dongsy")
    crossing(lost, 2)
    wait_until(lambda: ("wrong_site", "door-main") in open_alerts(server), 20, message="wrong_site alert")
    assert "'dongsy'" in open_alerts(server)[("wrong_site", "door-main")]
    wait_until(
        lambda: any(
            "no server status on footfall/dongsy/server/status" in r.getMessage() for r in caplog.records
        ),
        20,
        message="the device logs that no server answers",
    )
    assert lost.outbox.queue == 2


def test_two_devices_with_one_id_are_an_alert_and_both_say_so(server, devices, caplog):
    caplog.set_level(logging.ERROR, logger="footfall.edge")
    devices("door-main")
    devices("door-main")
    wait_until(
        lambda: ("duplicate_device", "door-main") in open_alerts(server), 60, message="duplicate_device alert"
    )
    wait_until(
        lambda: any("another device may be using the id" in r.getMessage() for r in caplog.records),
        60,
        message="a device logs that its connection keeps being taken",
    )


def test_a_clock_an_hour_slow_is_flagged_in_status_and_alerts(server, devices, monkeypatch):
    monkeypatch.setattr(edge, "utcnow", lambda: utcnow() - __import__("datetime").timedelta(hours=1))
    monkeypatch.setattr(edge, "HEARTBEAT_S", 0.3)
    devices("door-main")  # it believes it is synced

    def health():
        with sqlite3.connect(server, timeout=30) as conn:
            row = conn.execute("select health from devices where id='door-main'").fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    wait_until(lambda: ("clock_skew", "door-main") in open_alerts(server), 30, message="clock_skew alert")
    assert "60 min slow" in open_alerts(server)[("clock_skew", "door-main")]
    wait_until(lambda: health().get("clock") == "skewed", 10, message="status flagged")
    assert 3500 < health()["clock_skew_s"] < 3700


@pytest.mark.parametrize("damage", ["emptied", "garbled"])
def test_an_outbox_that_lost_its_events_is_reported_with_the_lost_range(
    server, devices, broker, tmp_path, damage, caplog
):
    path = tmp_path / "outbox-door-main.db"
    first = devices("door-main", outbox=path.name)
    crossing(first, 100)
    wait_until(lambda: first.outbox.queue == 0, 30, message="100 confirmed")
    wait_until(
        lambda: stored(server, "select last_seq from devices where id='door-main'") == 100,
        40,
        message="status",
    )
    broker.stop()  # the Pi loses the network, counts 50 more, then its outbox is lost while it is stopped
    crossing(first, 50)
    first.stop()
    if damage == "emptied":
        path.write_bytes(b"")
    else:
        data = path.read_bytes()
        path.write_bytes(data[:100] + bytes(b ^ 0x5A for b in data[100:4096]) + data[4096:])
        with pytest.raises(OutboxDamaged, match=str(path)):
            Outbox(path)
        path.rename(tmp_path / "outbox-door-main.damaged")  # what the error tells the operator to do
    broker.start()
    with caplog.at_level(logging.ERROR, logger="footfall.outbox"):
        again = devices("door-main", outbox=path.name)
    assert again.outbox.last_seq == 0
    assert (damage == "emptied") == any("events it held are lost" in r.getMessage() for r in caplog.records)
    crossing(again, 5)
    wait_until(lambda: ("seq_gap", "door-main") in open_alerts(server), 30, message="seq_gap alert")
    assert "lost: seq 101 onward" in open_alerts(server)[("seq_gap", "door-main")]
    wait_until(lambda: stored(server, "select count(*) from events") == 105, 30, message="new events counted")


def test_the_lost_range_is_exact_when_the_device_had_reported_its_last_seq(site_file):
    site = load_site(site_file)
    store = SqliteStore(site.db_path)
    ingestor = Ingestor(site, store)
    topic = "footfall/dongsi/device/door-main/"
    events = [
        Incoming(topic + "event", Crossing(id=f"e{n}", seq=n, ts=utcnow(), direction="in").encode())
        for n in range(1, 101)
    ]
    ingestor.process(events)

    def status(last_seq: int) -> Incoming:
        body = DeviceStatus(
            "online", "counter", "1", "2026-01-01T00:00:00.000Z", 0, last_seq, {"instance": "a"}
        )
        return Incoming(topic + "status", body.encode(), retain=True)

    ingestor.process([status(150)])  # it had counted 150; 101-150 were still on it
    assert store.count("alerts", "kind='seq_gap'") == 0
    ingestor.process([status(0)])  # back with an empty outbox
    message = store.conn.execute("select message from alerts where kind='seq_gap'").fetchone()[0]
    assert "lost: seq 101-150" in message
    store.close()
