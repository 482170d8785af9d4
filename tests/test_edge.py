"""The edge runtime shared by counters and kiosks: outbox policy, status, remote config and commands."""

from __future__ import annotations

import datetime as dt
import json

import paho.mqtt.client as mqtt
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from paho.mqtt.enums import CallbackAPIVersion

from footfall.counter.app import CounterApp
from footfall.counter.config import counter_config_from_dict
from footfall.messages import Crossing, decode_event
from footfall.outbox import Outbox, OutboxFull
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import SqliteStore
from footfall.site import load_site
from tests.conftest import EXAMPLE_SITE, wait_until


def test_full_outbox_refuses_and_counts_never_drops(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_events=3)
    for n in range(3):
        outbox.append(lambda seq, n=n: (f"id{n}", "t", b"x"))
    with pytest.raises(OutboxFull):
        outbox.append(lambda seq: ("id9", "t", b"x"))
    assert (outbox.queue, outbox.refused, outbox.last_seq) == (3, 1, 3)
    outbox.remove([1, 2])
    outbox.close()
    again = Outbox(tmp_path / "o.db", max_events=3)  # survives a restart, seq keeps counting
    assert (again.queue, again.refused, again.last_seq) == (1, 1, 3)
    assert again.append(lambda seq: ("id10", "t", b"x")) == 4


def make_counter(tmp_path, port: int, **device) -> CounterApp:
    raw = {
        "device": {
            "id": "door-main",
            "site": "dongsi",
            "clock": "synced",
            "data_dir": str(tmp_path),
            **device,
        },
        "mqtt": {"host": "127.0.0.1", "port": port},
        "led": {"pin": 22},
    }
    config = counter_config_from_dict(raw, "<test>")
    return CounterApp(config, pin_factory=MockFactory(pin_class=MockPWMPin))


@pytest.fixture
def watcher(broker):
    messages: dict[str, bytes] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_message = lambda c, u, m: messages.__setitem__(m.topic, m.payload)
    client.connect("127.0.0.1", broker.port)
    client.subscribe("footfall/#", 1)
    client.loop_start()
    yield client, messages
    client.loop_stop()
    client.disconnect()


def test_status_config_and_commands_over_a_real_broker(tmp_path, broker, watcher):
    client, messages = watcher
    status_topic = "footfall/dongsi/device/door-main/status"
    # Events wait until the device has seen the server's (retained) status.
    client.publish("footfall/dongsi/server/status", b"online", qos=1, retain=True).wait_for_publish(5)
    # A retained config waiting before the counter starts is applied when it connects.
    client.publish(
        "footfall/dongsi/device/door-main/config",
        json.dumps({"swap": True, "debounce": 0.05}),
        qos=1,
        retain=True,
    ).wait_for_publish(5)
    app = make_counter(tmp_path, broker.port).start()
    try:
        wait_until(
            lambda: app.detector.swap and app.timings.debounce == 0.05, 10, message="remote config applied"
        )
        status = json.loads(wait_until(lambda: messages.get(status_topic), 10))
        assert status["state"] == "online" and status["kind"] == "counter"
        assert status["health"]["sensor"] == "ok" and status["queue"] == 0
        app.runtime.emit(lambda **kw: Crossing(**kw, direction="in"))
        event = decode_event(wait_until(lambda: messages.get("footfall/dongsi/device/door-main/event"), 10))
        assert event.seq == 1 and event.clock is None
        client.publish(
            "footfall/dongsi/device/door-main/cmd", json.dumps({"v": 1, "id": "c1", "cmd": "identify"}), qos=1
        )
        wait_until(lambda: app.led.is_lit, 5, message="LED blinking")
    finally:
        app.stop()
    assert json.loads(
        wait_until(lambda: messages.get(status_topic) if b"offline" in messages[status_topic] else None, 10)
    ) == {"v": 1, "state": "offline"}


def test_unsynced_and_future_clocks_are_kept_at_receive_time(tmp_path):
    site = load_site(EXAMPLE_SITE)
    store = SqliteStore(tmp_path / "f.db")
    now = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
    stale = dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC)
    events = [
        Crossing(id="a", seq=1, ts=stale, clock="unsynced", direction="in"),
        Crossing(id="b", seq=2, ts=now + dt.timedelta(hours=3), direction="in"),
        Crossing(id="c", seq=3, ts=now - dt.timedelta(seconds=5), direction="in"),
    ]
    topic = "footfall/dongsi/device/door-main/event"
    changed = Ingestor(site, store).process([Incoming(topic, e.encode()) for e in events], now)
    rows = store.conn.execute("select id, clock_flag, ts, device_ts from events order by id").fetchall()
    assert [(r["id"], r["clock_flag"]) for r in rows] == [("a", "unsynced"), ("b", "future"), ("c", None)]
    assert rows[0]["ts"] == "2026-11-28T02:00:00.000Z" and rows[0]["device_ts"].startswith("1970")
    assert [s["entries_today"] for s in changed if s["room"] == "hall"] == [3]


def test_problems_name_a_stuck_pump_then_a_dead_one(tmp_path, broker, monkeypatch):
    import threading

    from footfall import edge

    monkeypatch.setattr(edge, "PUMP_STALL_S", 1.0)
    counter = make_counter(tmp_path, broker.port)
    runtime = counter.runtime
    stuck = threading.Event()
    runtime._extra_health = lambda: stuck.wait() and {}  # the pump hangs building its first status
    runtime.start()
    try:
        wait_until(lambda: any("stalled" in p for p in runtime.problems()), 10, message="stalled pump named")
        assert runtime.link.connected.is_set()
    finally:
        stuck.set()
    wait_until(lambda: runtime.problems() == [], 10, message="healthy once the pump runs again")
    runtime.stop()
    assert "outbox pump: not running" in runtime.problems()
