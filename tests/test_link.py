"""The MQTT link's reconnection schedule (pure), and against a real broker its clean stop, its chunked reads and its
one-write acknowledgements."""

from __future__ import annotations

import itertools
import random
import time

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


def barrier(link: MqttLink) -> None:
    """Wait until the broker has read all that the link sent: it handles a client's packets in order, so the
    PUBACK of a publish sent last means it has the acknowledgements sent before. Without it, a new connection
    under the same client id could take the session over while those are still unread, and the broker would
    rightly send their messages again."""
    info = link.publish("t/barrier", b"", qos=1)
    info.wait_for_publish(30)  # returns on a timeout too: a loaded machine must not skip the barrier silently
    assert info.is_published(), "the broker never acknowledged the barrier"


def test_reads_in_chunks_and_acknowledges_in_one_write_without_losing_or_freeing_a_message(broker):
    """Thousands of QoS 1 messages, one far larger than a 64 KiB read, come through the link's chunked reads
    intact and in order; the ones acknowledged with `ack_many` are gone, the rest come back on reconnecting."""
    topic = "t/burst"
    payloads = [f"message {n} ".encode() * (1 + n % 7) for n in range(3000)]
    payloads[1234] = bytes(range(256)) * 1000  # 256,000 bytes: a packet across several reads

    def session(on_message) -> MqttLink:
        link = MqttLink(
            "chunked-reader", LinkSettings(port=broker.port), subscriptions=[(topic, 1)],
            on_message=on_message, manual_ack=True,
        )  # fmt: skip
        link.start()
        assert link.wait_connected(10)
        return link

    first = session(lambda m: None)
    first.stop()  # the persistent session now queues for it
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.max_inflight_messages_set(500)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    infos = [sender.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)
    sender.loop_stop()
    sender.disconnect()

    got: list[mqtt.MQTTMessage] = []
    link = session(got.append)
    acked = 0

    def all_but_the_last_100_acknowledged() -> bool:
        nonlocal acked
        upto = min(len(got), len(payloads) - 100)  # the broker sends 1,000 at most before acknowledgements
        link.ack_many(got[acked:upto])
        acked = upto
        return len(got) >= len(payloads)

    wait_until(all_but_the_last_100_acknowledged, 20, 0.01, message="every queued message")
    assert [m.payload for m in got] == payloads
    barrier(link)
    link.stop()

    again: list[mqtt.MQTTMessage] = []
    link = session(again.append)
    wait_until(lambda: len(again) >= 100, 10, message="the unacknowledged messages again")
    link.ack_many(again)
    link.stop()
    assert [m.payload for m in again] == payloads[-100:]


def test_received_messages_keep_topic_qos_and_retain_and_are_acknowledged_without_manual_ack(broker):
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    sender.publish("t/flags/kept", b"retained", qos=0, retain=True).wait_for_publish(5)
    got: list[mqtt.MQTTMessage] = []

    def session() -> MqttLink:
        link = MqttLink(
            "flags-reader",
            LinkSettings(port=broker.port),
            subscriptions=[("t/flags/#", 1)],
            on_message=got.append,
        )
        link.start()
        assert link.wait_connected(10)
        return link

    link = session()
    wait_until(lambda: got, 5, message="the retained message")
    sender.publish("t/flags/live", b"live \x00 bytes", qos=1).wait_for_publish(5)
    wait_until(lambda: len(got) == 2, 5, message="the live message")
    barrier(link)
    link.stop()
    first = [(m.topic, m.payload, m.qos, m.retain) for m in got]
    assert first == [("t/flags/kept", b"retained", 0, True), ("t/flags/live", b"live \x00 bytes", 1, False)]
    got.clear()
    link = session()  # acknowledged by the link itself: only the retained message comes again
    wait_until(lambda: got, 5, message="the retained message again")
    time.sleep(0.5)
    link.stop()
    sender.loop_stop()
    sender.disconnect()
    assert [m.topic for m in got] == ["t/flags/kept"]
