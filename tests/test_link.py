"""The MQTT link's reconnection schedule (pure) and its clean stop against a real broker."""

from __future__ import annotations

import itertools
import random

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from footfall.link import LinkSettings, MqttLink, backoff_delays
from tests.conftest import wait_until


def test_backoff_doubles_with_jitter_up_to_the_maximum():
    delays = list(itertools.islice(backoff_delays(0.5, 30.0, random.Random(3)), 12))
    ceilings = [min(0.5 * 2**n, 30.0) for n in range(12)]
    assert all(ceiling / 2 <= d <= ceiling for d, ceiling in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered: a fleet does not retry in step
    other = list(itertools.islice(backoff_delays(0.5, 30.0, random.Random(4)), 12))
    assert other != delays


def test_last_will_and_clean_offline_message(broker):
    seen: list[bytes] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    watcher.on_message = lambda c, u, m: seen.append(m.payload)
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("t/status", 1)
    watcher.loop_start()
    try:
        link = MqttLink("link-test", LinkSettings(port=broker.port), will=("t/status", b"gone")).start()
        assert link.wait_connected(10)
        link.publish("t/status", b"here", retain=True)
        wait_until(lambda: b"here" in seen, 5)
        link.stop(final=("t/status", b"bye"))
        wait_until(lambda: b"bye" in seen, 5, message="the final message sent before disconnecting")
        assert b"gone" not in seen  # a clean stop does not trigger the Last Will
    finally:
        watcher.loop_stop()
        watcher.disconnect()
