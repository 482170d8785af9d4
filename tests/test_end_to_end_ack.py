"""End-to-end acknowledgement: a device deletes an event only when ingest has committed it, so a broker killed
before it saves loses nothing; acks meant for another outbox delete nothing; the status shows the oldest
unconfirmed event's age."""

from __future__ import annotations

import json
import signal
import sqlite3

import pytest

from footfall.clock import utcnow
from footfall.demo.broker import LocalBroker
from footfall.messages import Crossing
from footfall.outbox import Outbox
from footfall.server.acks import seq_ranges
from tests.conftest import door_runtime, footfall_env, wait_server_online, wait_until

TOTAL = 500


def stored(db, sql: str = "select count(*) from events") -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_ranges_follow_arrival_and_break_where_seq_goes_back():
    arrived = [(1, "a"), (2, "b"), (3, "c"), (2, "b"), (3, "c"), (7, "g"), (1, "x")]
    assert seq_ranges(arrived) == [(1, 3, "c"), (2, 3, "c"), (7, 7, "g"), (1, 1, "x")]


def test_outbox_deletes_only_ranges_whose_last_event_it_holds(tmp_path):
    outbox = Outbox(tmp_path / "o.db")
    for n in range(1, 11):
        outbox.append(lambda seq, n=n: (f"id{n}", "t", b"{}"))
    assert outbox.confirm([(1, 4, "other-outbox-id4")]) == 0  # an ack for a reset outbox: nothing deleted
    assert outbox.confirm([(1, 4, "id4")]) == 4
    assert outbox.confirm([(1, 4, "id4")]) == 0  # a repeated ack is harmless
    assert outbox.confirm([(5, 7, "id7"), (9, 10, "id10")]) == 5
    assert [p.seq for p in outbox.pending()] == [8]
    assert outbox.queue == 1


def test_broker_sigkilled_before_saving_loses_none_of_the_acknowledged_events(tmp_path, site_file, procs):
    # The broker only saves every hour here: everything it holds when killed is only in its memory.
    broker = LocalBroker(tmp_path / "broker", kind="mosquitto", extra_conf="autosave_interval 3600").start()
    env = footfall_env(broker)
    db = tmp_path / "data" / "footfall.db"
    device = None
    try:
        ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
        wait_server_online(broker)
        broker.restart()  # graceful: the server's session is saved, as on a broker that has run for a while
        ingest.stop()  # the server is down (restarting, updating)

        device = door_runtime(tmp_path / "outbox.db", broker.port).start()
        for _ in range(TOTAL):
            device.emit(lambda **kw: Crossing(**kw, direction="in"))
        wait_until(
            lambda: device._sent_upto == TOTAL and not device._inflight,
            30,
            message="the broker acknowledged (PUBACK) all 500",
        )
        assert device.outbox.queue == TOTAL  # a PUBACK deletes nothing: the server has not confirmed them
        health = device.health()
        assert health["unconfirmed_age_s"] >= 0
        assert device.status().queue == TOTAL

        broker.proc.send_signal(signal.SIGKILL)  # power loss: the broker's queue for the server is gone
        broker.proc.wait()
        broker.start()
        procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest-again")
        wait_until(lambda: stored(db) >= TOTAL, 60, message=f"all {TOTAL} stored (have {stored(db)})")
        wait_until(lambda: device.outbox.queue == 0, 30, message="the outbox emptied by the server's acks")
    finally:
        if device is not None:
            device.stop()
        broker.stop()
    assert stored(db) == TOTAL
    assert stored(db, "select count(distinct seq) from events where device='door-main'") == TOTAL
    assert stored(db, "select entries from rooms_live where room='hall'") == TOTAL


def test_status_reports_the_oldest_unconfirmed_events_age(tmp_path):
    device = door_runtime(tmp_path / "outbox.db", 1)  # never connects: nothing is confirmed
    assert "unconfirmed_age_s" not in device.health()
    first = device.emit(lambda **kw: Crossing(**kw, direction="in"))
    device.emit(lambda **kw: Crossing(**kw, direction="out"))
    age = device.health()["unconfirmed_age_s"]
    assert 0 <= age <= (utcnow() - first.ts).total_seconds() + 0.01
    assert json.loads(device.status().encode())["health"]["unconfirmed_age_s"] == pytest.approx(age, abs=1)
    device.outbox.close()
