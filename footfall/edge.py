"""The edge runtime shared by the counter and the kiosk: outbox -> MQTT with a bounded in-flight window,
retained status with Last Will and heartbeat, clock-sync detection, remote config and commands.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ulid import ULID

from footfall import __version__, sdnotify, topics
from footfall.clock import format_ts, utcnow
from footfall.link import LinkSettings, MqttLink
from footfall.messages import OFFLINE, DeviceStatus, Event
from footfall.outbox import Outbox

logger = logging.getLogger(__name__)

# paho keys unacknowledged QoS 1 messages by a 16-bit id: keep far below 65,535 outstanding.
INFLIGHT_WINDOW = 1000
HEARTBEAT_S = 30.0
DELETE_BATCH = 500
RESEND_AFTER_S = 30.0  # an unacknowledged publish older than this on a live connection is sent again
FRESH_MAX = 10_000  # beyond this (a long outage) the pump reads the backlog from the outbox file instead
DELETE_EVERY_S = 0.05


def clock_synced() -> bool:
    """True when the kernel says the system clock is synchronised (NTP, chrony, timesyncd all set this).

    adjtimex() returns TIME_ERROR (5) while the clock is unsynchronised; a Pi with no RTC starts that way.
    """
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        return libc.adjtimex(buf) not in (-1, 5)
    except (OSError, AttributeError):
        return True


def cpu_temperature() -> float | None:
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None


def _acknowledged(info) -> bool:
    """Has the broker acknowledged this QoS 1 publish? paho marks a message published while disconnected with
    rc=NO_CONN but keeps it queued and sends it after reconnecting, so look at the flag itself."""
    try:
        return info.is_published()
    except RuntimeError:
        with info._condition:
            return info._published


@dataclass
class EdgeSettings:
    site: str
    device: str
    kind: str  # counter | kiosk
    outbox_path: str
    link: LinkSettings = field(default_factory=LinkSettings)
    prefix: str = "footfall"
    max_events: int = 100_000
    high_water: int = 1000
    clock: str = "auto"  # auto | synced | unsynced
    window: int = INFLIGHT_WINDOW  # unacknowledged publishes at most
    # Hold events until the server's retained status has been seen: before ingest has subscribed once, the broker
    # would accept events and deliver them to nobody (a new install where the devices start first).
    wait_for_server: bool = True


class EdgeRuntime:
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        on_config: Callable[[dict[str, Any]], None] | None = None,
        commands: dict[str, Callable[[dict[str, Any]], None]] | None = None,
        sensor_health: Callable[[], str] = lambda: "ok",
        extra_health: Callable[[], dict[str, Any]] | None = None,
    ):
        self.settings = settings
        self.outbox = Outbox(settings.outbox_path, settings.max_events)
        self._on_config = on_config
        self.commands = {"reset-health": lambda _msg: None, **(commands or {})}
        self._sensor_health = sensor_health
        self._extra_health = extra_health
        # (seq, MQTTMessageInfo) in publish order; the broker acknowledges QoS 1 in order, so acks pop the front.
        self._inflight: deque[tuple[int, Any, float]] = deque()  # (seq, MQTTMessageInfo, sent at)
        self._replay = False
        self._acked: list[int] = []  # acknowledged, not yet deleted
        # Events stored by this process, handed to the pump without reading them back from the outbox file.
        self._fresh: deque[tuple[int, bytes]] = deque()
        self._backlog = True  # events may wait in the outbox file that `_fresh` does not hold
        self._fresh_lock = threading.Lock()
        self._last_delete = 0.0
        self._sent_upto = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.last_events: list[dict[str, Any]] = []
        s = settings
        self.status_topic = topics.device_status(s.site, s.device, s.prefix)
        self.event_topic = topics.device_event(s.site, s.device, s.prefix)
        self.server_topic = topics.server_status(s.site, s.prefix)
        self.server_seen = threading.Event()
        if not s.wait_for_server:
            self.server_seen.set()
        self.link = MqttLink(
            f"footfall-{s.site}-{s.device}",
            s.link,
            will=(self.status_topic, OFFLINE.encode()),
            subscriptions=[
                (topics.device_config(s.site, s.device, s.prefix), 1),
                (topics.device_cmd(s.site, s.device, s.prefix), 1),
                (self.server_topic, 1),
            ],
            on_message=self._handle_message,
            on_connect=self._handle_connect,
            on_publish=self._handle_publish,
        )
        self._pump = threading.Thread(target=self._run_pump, name="outbox-pump", daemon=True)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> EdgeRuntime:
        self.link.start()
        self._pump.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pump.join(5)
        self._flush_acks()
        self.link.stop(final=(self.status_topic, OFFLINE.encode()))
        self.outbox.close()

    # --- events ---------------------------------------------------------------------------------

    def clock_state(self) -> str:
        if self.settings.clock != "auto":
            return self.settings.clock
        return "synced" if clock_synced() else "unsynced"

    def emit(self, make: Callable[..., Event]) -> Event:
        """Store an event durably, then let the pump publish it. `make(id=, seq=, ts=, clock=)` builds it."""
        built: list[tuple[Event, bytes]] = []
        clock = self.clock_state()

        def build(seq: int) -> tuple[str, str, bytes]:
            event = make(id=str(ULID()), seq=seq, ts=utcnow(), clock=None if clock == "synced" else clock)
            payload = event.encode()
            built.append((event, payload))
            return event.id, self.event_topic, payload

        seq = self.outbox.append(build)
        event, payload = built[0]
        with self._fresh_lock:
            if len(self._fresh) < FRESH_MAX:
                self._fresh.append((seq, payload))
            else:
                self._backlog = True
        self.last_events = ([event.to_dict()] + self.last_events)[:20]
        self._wake.set()
        return event

    # --- status ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        health: dict[str, Any] = {"sensor": self._sensor_health(), "clock": self.clock_state()}
        if self.outbox.queue >= self.settings.high_water:
            health["outbox"] = "backlog"
        if self.outbox.refused:
            health["outbox"] = "full"
            health["refused"] = self.outbox.refused
        temp = cpu_temperature()
        if temp is not None:
            health["cpu_temp_c"] = temp
        if self._extra_health is not None:
            health.update(self._extra_health())
        return health

    def status(self) -> DeviceStatus:
        return DeviceStatus(
            state="online",
            kind=self.settings.kind,
            version=__version__,
            ts=format_ts(utcnow()),
            queue=self.outbox.queue,
            last_seq=self.outbox.last_seq,
            health=self.health(),
        )

    def publish_status(self) -> None:
        if self.link.connected.is_set():
            self.link.publish(self.status_topic, self.status().encode(), qos=1, retain=True)

    # --- network thread -------------------------------------------------------------------------

    def _handle_connect(self, session_present: bool) -> None:
        self.publish_status()
        self._replay = True
        self._wake.set()

    def _handle_publish(self, mid: int) -> None:
        # No bookkeeping here: paho calls this holding its own locks, and the pump may be inside publish().
        # The pump collects acknowledgements every DELETE_EVERY_S anyway; wake it early only when the in-flight
        # window is full and new events wait for room.
        if len(self._inflight) >= self.settings.window:
            self._wake.set()

    def _handle_message(self, message) -> None:
        if message.topic == self.server_topic:
            if message.payload and not self.server_seen.is_set():
                logger.info(
                    "server status seen (%s): sending events", message.payload.decode(errors="replace")
                )
                self.server_seen.set()
                self._wake.set()
            return
        kind = message.topic.rsplit("/", 1)[-1]
        try:
            body = json.loads(message.payload) if message.payload else {}
        except ValueError:
            logger.warning("ignoring non-JSON %s message", kind)
            return
        if kind == "config" and self._on_config is not None and isinstance(body, dict):
            self._on_config(body)
        elif kind == "cmd" and isinstance(body, dict):
            handler = self.commands.get(str(body.get("cmd")))
            if handler is None:
                logger.warning("unknown command %r", body.get("cmd"))
                return
            handler(body)
            self.publish_status()

    # --- pump thread ----------------------------------------------------------------------------

    def _run_pump(self) -> None:
        next_status = 0.0
        while not self._stop.is_set():
            sdnotify.watchdog()  # the pump wakes at least every 0.5 s: a stuck pump stops feeding systemd
            self._wake.wait(DELETE_EVERY_S if self._acked or self._inflight else 0.5)
            self._wake.clear()
            self._collect_acks()
            now = time.monotonic()
            if self._replay or self._front_stale(now):
                self._restart_from_outbox()
            # Deletes are batched (one fsync per batch, not per event): a delete lost to a crash only means a
            # resend, which ingest ignores.
            if len(self._acked) >= DELETE_BATCH or (
                self._acked and now - self._last_delete >= DELETE_EVERY_S
            ):
                self._flush_acks()
            self._send_pending()
            now = time.monotonic()
            if now >= next_status:
                self.publish_status()
                next_status = now + HEARTBEAT_S

    def _front_stale(self, now: float) -> bool:
        """The oldest unacknowledged publish has waited too long on a live connection."""
        return (
            bool(self._inflight)
            and self.link.connected.is_set()
            and now - self._inflight[0][2] > RESEND_AFTER_S
        )

    def _restart_from_outbox(self) -> None:
        """Resend everything unacknowledged, in seq order, from the outbox file.

        Done after every (re)connection rather than trusting the MQTT client's in-memory resend, which can lose a
        message published while the link was going down; a resent duplicate is ignored by ingest.
        """
        self._replay = False
        self._flush_acks()
        self._inflight.clear()
        with self._fresh_lock:
            self._fresh.clear()
            self._backlog = True
        self._sent_upto = 0

    def _collect_acks(self) -> None:
        while self._inflight and _acknowledged(self._inflight[0][1]):
            self._acked.append(self._inflight.popleft()[0])

    def _flush_acks(self) -> None:
        self._collect_acks()
        acked, self._acked = self._acked, []
        self.outbox.remove(acked)
        self._last_delete = time.monotonic()

    def _send_pending(self) -> None:
        room = self.settings.window - len(self._inflight)
        if room <= 0 or not self.server_seen.is_set():
            return
        with self._fresh_lock:
            while self._fresh and self._fresh[0][0] <= self._sent_upto:
                self._fresh.popleft()
            contiguous = bool(self._fresh) and self._fresh[0][0] == self._sent_upto + 1
            fresh = [self._fresh.popleft() for _ in range(min(room, len(self._fresh)))] if contiguous else []
        if fresh:
            items = [(seq, self.event_topic, payload) for seq, payload in fresh]
        elif self._backlog or self._fresh:
            # A backlog from before this process started, from a reconnection or a long outage: read it from the
            # outbox file until caught up (then new events come through `_fresh` again).
            items = [(p.seq, p.topic, p.payload) for p in self.outbox.pending(self._sent_upto, room)]
            self._backlog = len(items) == room
        else:
            return
        for seq, item_topic, payload in items:
            # paho queues QoS 1 messages while disconnected and resends them after reconnecting.
            self._inflight.append((seq, self.link.publish(item_topic, payload, qos=1), time.monotonic()))
            self._sent_upto = seq
