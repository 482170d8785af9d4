"""The MQTT link: paho-mqtt 2.x with VERSION2 callbacks, a Last Will, a persistent session under a fixed client id,
QoS 1, and reconnection with jittered exponential backoff.

MQTT 3.1.1 is used on purpose: it is what every broker Footfall meets speaks (Mosquitto, EMQX, and the embedded
amqtt broker of `footfall demo`, which refuses 3.1 and 5).
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from footfall.config import MqttSettings
from footfall.errors import FootfallError

logger = logging.getLogger(__name__)

MessageHandler = Callable[[mqtt.MQTTMessage], None]


class LinkError(FootfallError):
    """The link cannot even try to connect (no broker host): a one-line error, not a dead network thread."""


@dataclass(frozen=True)
class LinkSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = 30

    @classmethod
    def from_config(cls, mqtt_section: MqttSettings) -> LinkSettings:
        return cls(**{k: getattr(mqtt_section, k) for k in cls.__dataclass_fields__})


def backoff_delays(minimum: float, maximum: float, rng: random.Random | None = None):
    """Yield jittered exponential delays: each in [d/2, d], d doubling up to `maximum` (spreads a fleet's retries)."""
    rng = rng or random.Random()
    delay = minimum
    while True:
        yield rng.uniform(delay / 2, delay)
        delay = min(delay * 2, maximum)


READ_SIZE = 65536
PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK, remaining length 2) and the message id


class _Message(mqtt.MQTTMessage):
    """A received message without paho's MQTTMessageInfo, which only publish()'s wait_for_publish() uses: its
    Condition, bound methods and deque are nine of the ten objects per message the garbage collector must walk
    (a district worker holds thousands of messages until their batch commits), and the costliest to make."""

    __slots__ = ()

    def __init__(self, mid: int, topic: bytes, command: int, payload: bytes):
        self.mid, self._topic, self.payload = mid, topic, payload
        self.dup, self.qos, self.retain = bool(command & 0x08), (command & 0x06) >> 1, bool(command & 0x01)
        self.timestamp, self.state, self.info, self.properties = time.monotonic(), 0, None, None


class _Client(mqtt.Client):
    """paho's Client with fewer system calls per message, each of which lets another thread take the GIL (and
    costs a wait for it back). paho reads a packet in three recv() calls (its first byte, its length, the rest)
    and one packet per loop() before the next select(); this one reads up to 64 KiB at a time and handles every
    packet already read before it selects again. `puback_many` sends many PUBACKs in one write, not one each.
    A QoS 0 or 1 PUBLISH (MQTT 3.1.1, no paho logging) becomes a lighter `_Message`."""

    _rbuf = b""
    _rpos = 0

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf, self._rpos = b"", 0  # never parse a dead connection's bytes as the new one's
        return super().reconnect()

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf, pos = super()._sock_recv(max(bufsize, READ_SIZE)), 0
            if not buf:  # closed by the broker
                return buf
        self._rbuf, self._rpos = buf, pos + bufsize
        return buf[pos : pos + bufsize]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # Until what was read is used up: select() knows nothing of these bytes, and would wait on them.
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self._rpos < len(self._rbuf)
        ):
            rc = self._packet_read()
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            if rc > 0:
                return self._loop_rc_handle(rc)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        command, packet = self._in_packet["command"], self._in_packet["packet"]
        qos = (command & 0x06) >> 1
        if qos == 2 or self._protocol != mqtt.MQTTv311 or self._logger is not None or self.on_log is not None:
            return super()._handle_publish()
        start = 2 + int.from_bytes(packet[:2], "big")  # after the topic: the message id, then the payload
        end = start + 2 if qos else start
        if start == 2 or len(packet) < end:  # empty topic, or short: paho's own decoding says what is wrong
            return super()._handle_publish()
        mid = int.from_bytes(packet[start:end], "big")
        self._handle_on_message(_Message(mid, bytes(packet[2:start]), command, bytes(packet[end:])))
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def puback_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages (manual_ack) with one queued write, as `ack(mid, 1)` does one at a time."""
        if self._manual_ack and mids:
            packet = b"".join([PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            self._packet_queue(mqtt.PUBACK, packet, 0, 1)


class MqttLink:
    """One MQTT connection, run on its own thread. Callbacks run on that thread; keep them short."""

    def __init__(
        self,
        client_id: str,
        settings: LinkSettings,
        *,
        will: tuple[str, bytes] | None = None,
        clean_session: bool = False,
        subscriptions: Iterable[tuple[str, int]] = (),
        on_message: MessageHandler | None = None,
        on_connect: Callable[[bool], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        on_publish: Callable[[int], None] | None = None,
        manual_ack: bool = False,
        max_inflight: int = 1000,
        min_delay: float = 0.5,
        max_delay: float = 30.0,
    ):
        if not isinstance(settings.host, str) or not settings.host.strip():
            raise LinkError(
                f"no MQTT broker host for {client_id}: set [mqtt] host (or FOOTFALL_MQTT_HOST) to the broker's address"
            )
        self.client_id = client_id
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._on_publish = on_publish
        self.min_delay, self.max_delay = min_delay, max_delay
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._had_connection = False  # since the last backoff reset
        self._stop_deadline = 0.0
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
            manual_ack=manual_ack,
        )
        client.max_inflight_messages_set(max_inflight)
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set(
                ca_certs=settings.ca_file,
                certfile=settings.cert_file,
                keyfile=settings.key_file,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        self.client = client

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> MqttLink:
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.client_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, final: tuple[str, bytes] | None = None, timeout: float = 5.0) -> None:
        """Disconnect cleanly; `final` is a last retained message (e.g. status offline) sent first."""
        if final is not None and self.connected.is_set():
            info = self.client.publish(final[0], final[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=min(timeout, 2.0))
        self._stop_deadline = time.monotonic() + min(timeout, 2.0)
        self._stopping.set()
        with contextlib.suppress(Exception):  # already gone is fine when stopping
            self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def _run(self) -> None:
        # Be the client's network thread: paho then leaves every write to this loop rather than writing from the
        # threads that publish and acknowledge (one wake-up byte each instead of a send and a lock round trip).
        self.client._thread = threading.current_thread()
        delays = backoff_delays(self.min_delay, self.max_delay)
        first = True
        while not self._stopping.is_set():
            try:
                if first:
                    self.client.connect(self.settings.host, self.settings.port, self.settings.keepalive)
                    first = False
                else:
                    self.client.reconnect()
            except (OSError, ssl.SSLError) as exc:
                logger.info("broker %s:%s unreachable (%s)", self.settings.host, self.settings.port, exc)
                self._stopping.wait(next(delays))
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. paho's ValueError("Invalid host."): say so, keep trying
                logger.error("cannot connect to %s:%s: %s", self.settings.host, self.settings.port, exc)
                self._stopping.wait(next(delays))
                continue
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            while rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self.client.loop(timeout=0.2)
                # When stopping, keep looping until paho has sent the DISCONNECT (it then reports no connection).
                if self._stopping.is_set() and time.monotonic() > self._stop_deadline:
                    break
            if self.connected.is_set():
                # Lost without a DISCONNECT packet (socket error): the callback may not have run.
                self._handle_disconnect(self.client, None, None, None, None)
            if self._had_connection:
                delays = backoff_delays(self.min_delay, self.max_delay)
                self._had_connection = False
            if not self._stopping.is_set():
                self._stopping.wait(next(delays))
        self.connected.clear()

    # --- paho callbacks (network thread) --------------------------------------------------------

    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.warning("broker refused %s: %s", self.client_id, reason_code)
            return
        self._had_connection = True
        for topic, qos in self.subscriptions:
            client.subscribe(topic, qos)
        self.connected.set()
        logger.info("connected to %s:%s as %s", self.settings.host, self.settings.port, self.client_id)
        if self._on_connect is not None:
            self._on_connect(bool(getattr(flags, "session_present", False)))

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self.connected.is_set():
            return
        self.connected.clear()
        logger.info("disconnected from broker (%s)", reason_code)
        if self._on_disconnect is not None:
            self._on_disconnect()

    def _handle_message(self, client, userdata, message) -> None:
        if self._on_message is not None:
            try:
                self._on_message(message)
            except Exception:  # noqa: BLE001 - an exception here would end paho's loop and this link with it
                logger.exception("the handler of %s failed; the link goes on", message.topic)

    def _handle_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if self._on_publish is not None:
            self._on_publish(mid)

    # --- use ------------------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def ack(self, mid: int, qos: int) -> None:
        self.client.ack(mid, qos)

    def ack_many(self, messages: Iterable) -> None:
        """Acknowledge messages (manual_ack; anything with `mid` and `qos`): the QoS 1 ones' PUBACKs in one write."""
        mids = []
        for message in messages:
            if message.qos == 1:
                mids.append(message.mid)
            elif message.qos == 2:
                self.client.ack(message.mid, 2)
        self.client.puback_many(mids)
