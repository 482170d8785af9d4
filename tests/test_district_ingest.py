"""One district ingest worker, in process, on a real Mosquitto and a throwaway PostgreSQL: every valid event
stored once, everything PostgreSQL would refuse or the contract forbids dead-lettered rather than retried for
ever, and all of it acknowledged only with its batch (a worker that comes back gets nothing again)."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall.server.district_ingest import DistrictWorker, WorkerSettings
from footfall.server.district_store import DistrictStore
from tests.conftest import wait_until

pytestmark = pytest.mark.integration
VALID = 600


def crossing(event_id: str, number: int, **changes) -> bytes:
    body = {"v": 1, "id": event_id, "seq": number, "ts": "2026-12-01T02:00:00.000Z", "type": "crossing"}
    return json.dumps({**body, "direction": "in", **changes}).encode()


# (topic under footfall/dongsi/, payload): each one must end as a dead letter, none may stall the worker.
BAD = [
    ("device/door-main/event", b"not json"),
    ("device/door-main/event", crossing("bad-seq", 1, seq="one")),
    ("device/door-main/event", crossing("bad-direction", 1, direction="sideways")),
    ("device/door-main/event", crossing("nul-\u0000-id", 1)),  # valid JSON, but no PostgreSQL text
    ("device/Door_Main/event", crossing("bad-device", 1)),
    ("room/hall/state", json.dumps({"occupancy": 2**40, "capacity": 10, "level": "ok"}).encode()),
]


class Running:
    def __init__(self, dsn: str, port: int):
        self.worker = DistrictWorker(WorkerSettings(dsn, "127.0.0.1", port, "district.ingest.1", "unused"))
        self.events = 0  # event messages delivered to this worker
        handler = self.worker.link._on_message

        def counting(message):
            self.events += message.topic.endswith("/event")
            handler(message)

        self.worker.link._on_message = counting
        self.thread = threading.Thread(target=self.worker.run)
        self.thread.start()
        assert self.worker.link.wait_connected(10)
        time.sleep(0.5)  # its SUBACKs

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(10)


def test_worker_stores_valid_events_once_and_dead_letters_the_rest_without_redelivery(postgres, broker):
    dsn = postgres.create_database("district_ingest")
    first = Running(dsn, broker.port)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.max_inflight_messages_set(200)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    messages = [(f"device/door-{n % 3}/event", crossing(f"e-{n}", n)) for n in range(VALID)]
    messages[VALID // 2 : VALID // 2] = BAD
    messages.append((f"device/door-{7 % 3}/event", crossing("e-7", 7)))  # a repeat: the key drops it
    try:
        for topic, payload in messages:
            sender.publish(f"footfall/dongsi/{topic}", payload, qos=1).wait_for_publish(10)
    finally:
        sender.loop_stop()
        sender.disconnect()
    store = DistrictStore(dsn, migrate=False)  # not the worker's connection: its transactions are its own

    def counts() -> tuple[int, int]:
        events = store.count_events("dongsi")
        dead = store.conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        store.conn.commit()
        return events, dead

    try:
        wait_until(lambda: counts() == (VALID, len(BAD)), 20, message="every event stored or dead-lettered")
        wait_until(lambda: not first.worker._pending, 5, message="the worker idle")
        assert first.worker.stored == VALID and store.duplicates() == 0
        reasons = [r[0] for r in store.conn.execute("SELECT reason FROM dead_letters ORDER BY n")]
        assert any("NUL" in r for r in reasons) and any("occupancy" in r for r in reasons), reasons
        excerpt = store.conn.execute("SELECT excerpt FROM dead_letters WHERE reason LIKE '%NUL%'").fetchone()[
            0
        ]
        assert "nul-" in excerpt
        # The broker handles a client's packets in order: this PUBACK means it has read every acknowledgement.
        first.worker.link.publish("footfall/barrier", b"", qos=1).wait_for_publish(5)
    finally:
        first.stop()

    again = Running(dsn, broker.port)  # the same persistent session: anything unacknowledged comes back
    try:
        time.sleep(1.5)
        assert again.events == 0
    finally:
        again.stop()
    assert counts() == (VALID, len(BAD))
    store.close()


def test_a_failed_first_batch_does_not_leave_the_store_without_its_copy_table(postgres):
    """The first batch makes the connection's temporary COPY table; when that batch fails and rolls back, the
    table goes with it, and the next batch (the same one, retried) must make it again, not fail for ever."""
    import psycopg

    from footfall.clock import utcnow

    store = DistrictStore(postgres.create_database("district_retry"))
    now = utcnow()
    row = ("dongsi", "door-main", "e-1", 1, "crossing", now, now, "in", 1, None, None, None, None)
    with pytest.raises(psycopg.Error):
        store.store_batch([row, ("dongsi", "door-main", "e-\x00", *row[3:])])
    store.conn.rollback()
    assert store.store_batch([row]) == 1 and store.count_events() == 1
    store.close()


def test_worker_reconnects_to_postgres_after_losing_its_connection(postgres, broker):
    """PostgreSQL restarting (here: the worker's backend terminated) ends the worker's connection; the worker
    opens a new one and stores the batch it was holding, and the ones after it."""
    dsn = postgres.create_database("district_reconnect")
    running = Running(dsn, broker.port)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    check = DistrictStore(dsn, migrate=False)
    check.conn.autocommit = True

    def send(first: int, count: int) -> None:
        for n in range(first, first + count):
            sender.publish(
                "footfall/dongsi/device/door-main/event", crossing(f"r-{n}", n), qos=1
            ).wait_for_publish(5)

    try:
        send(0, 50)
        wait_until(lambda: check.count_events() == 50, 10, message="the first events")
        killed = check.conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        assert killed == 1  # the worker's connection
        send(50, 50)
        wait_until(
            lambda: check.count_events() == 100, 20, message="the events after the connection was lost"
        )
        assert check.duplicates() == 0
    finally:
        running.stop()
        sender.loop_stop()
        sender.disconnect()
        check.close()
