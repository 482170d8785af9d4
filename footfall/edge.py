"""The edge runtime shared by the counter and the kiosk: outbox -> MQTT with a bounded in-flight window,
retained status with Last Will and heartbeat, clock-sync detection, remote config and commands.

End-to-end acknowledgement: an event leaves the outbox only when ingest says it has committed it (the device's
`ack` topic), not when the broker PUBACKs it: a broker killed before it saves loses what it held in memory. What
the server has not confirmed is sent again after every reconnection, when the server comes (back) online, and when
no confirmation has come for `confirm_timeout` seconds; ingest ignores the repeats (unique (device, id)).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import secrets
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
from footfall.outbox import Outbox, OutboxFull

logger = logging.getLogger(__name__)

# paho keys unacknowledged QoS 1 messages by a 16-bit id: keep far below 65,535 outstanding.
INFLIGHT_WINDOW = 1000
HEARTBEAT_S = 30.0
RESEND_AFTER_S = 30.0  # an unacknowledged publish older than this on a live connection is sent again
PUMP_STALL_S = 10.0  # the pump wakes at least every 0.5 s
FRESH_MAX = 10_000  # beyond this (a long outage) the pump reads the backlog from the outbox file instead
PUBACK_POLL_S = 0.05
CONFIRM_TIMEOUT_S = 30.0  # no confirmation for this long while events wait: send them again (then back off)
CONFIRM_TIMEOUT_MAX_S = 600.0
SERVER_GRACE_S = 5.0  # after the server comes online: its queued events should be confirmed by then
NO_SERVER_WARN_S = 30.0
REFUSED_LOG_EVERY_S = 60.0
FLAP_WINDOW_S = 60.0  # this many short-lived connections within the window: another client uses our id
FLAP_COUNT = 3


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
    confirm_timeout: float = CONFIRM_TIMEOUT_S
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
        # Confirmations from ingest (lists of (first seq, last seq, id of last)), applied by the pump.
        self._confirms: deque[list[tuple[int, int, str]]] = deque()
        self._confirm_timeout = settings.confirm_timeout
        self._confirm_deadline: float | None = None
        self.server_online = False
        self.instance = secrets.token_hex(4)  # tells the server apart two devices that share one id
        self._refused_logged = 0.0
        self._refused_since_log = 0
        self._connected_at = 0.0
        self._short_connections: deque[float] = deque()
        self._flap_warned = 0.0
        self._started_at = time.monotonic()
        self._no_server_warned = False
        # Events stored by this process, handed to the pump without reading them back from the outbox file.
        self._fresh: deque[tuple[int, bytes]] = deque()
        self._backlog = True  # events may wait in the outbox file that `_fresh` does not hold
        self._fresh_lock = threading.Lock()
        self._sent_upto = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.last_events: list[dict[str, Any]] = []
        s = settings
        self.status_topic = topics.device_status(s.site, s.device, s.prefix)
        self.event_topic = topics.device_event(s.site, s.device, s.prefix)
        self.server_topic = topics.server_status(s.site, s.prefix)
        self.ack_topic = topics.device_ack(s.site, s.device, s.prefix)
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
                (self.ack_topic, 1),
            ],
            on_message=self._handle_message,
            on_connect=self._handle_connect,
            on_disconnect=self._handle_disconnect,
            on_publish=self._handle_publish,
        )
        self._pump_tick = time.monotonic()
        self._status_due = False
        self._pump = threading.Thread(target=self._run_pump, name="outbox-pump", daemon=True)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> EdgeRuntime:
        self.link.start()
        self._pump.start()
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return  # stopped already (a second stop must not touch the closed outbox)
        self._stop.set()
        self._wake.set()
        self._pump.join(5)
        self._apply_confirms()
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

        try:
            seq = self.outbox.append(build)
        except OutboxFull:
            self._log_refusal()
            raise
        event, payload = built[0]
        with self._fresh_lock:
            if len(self._fresh) < FRESH_MAX:
                self._fresh.append((seq, payload))
            else:
                self._backlog = True
        self.last_events = ([event.to_dict()] + self.last_events)[:20]
        self._wake.set()
        return event

    def _log_refusal(self) -> None:
        """One line a minute while the outbox is full, not one per refused event."""
        self._refused_since_log += 1
        now = time.monotonic()
        if now - self._refused_logged >= REFUSED_LOG_EVERY_S:
            logger.error(
                "outbox %s is full (%d unconfirmed events, max_events): refused %d new event(s) since the last"
                " report, %d in all; they are counted in the status, not stored",
                self.outbox.path,
                self.outbox.queue,
                self._refused_since_log,
                self.outbox.refused,
            )
            self._refused_logged, self._refused_since_log = now, 0

    # --- status ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        health: dict[str, Any] = {"sensor": self._sensor_health(), "clock": self.clock_state()}
        if self.outbox.queue >= self.settings.high_water:
            health["outbox"] = "backlog"
        if self.outbox.full:
            health["outbox"] = "full"
        refused = self.outbox.refused
        if refused:
            health["refused"] = (
                refused  # stays reported (a loss is never silent); "full" clears with the queue
            )
        oldest = self.outbox.oldest_ts()
        if oldest is not None:
            health["unconfirmed_age_s"] = round(max(0.0, (utcnow() - oldest).total_seconds()), 1)
        health["instance"] = self.instance
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
        """Pump thread only: statuses built and sent by one thread arrive in order, so the server never sees
        `last_seq` go back (which it would take for a lost outbox)."""
        if self.link.connected.is_set():
            self.link.publish(self.status_topic, self.status().encode(), qos=1, retain=True)

    def _status_soon(self) -> None:
        self._status_due = True
        self._wake.set()

    # --- network thread -------------------------------------------------------------------------

    def _handle_connect(self, session_present: bool) -> None:
        self._connected_at = time.monotonic()
        self._replay = True
        self._status_soon()

    def _handle_disconnect(self) -> None:
        """Count connections the broker closes within seconds: a second client with our id takes them over."""
        now = time.monotonic()
        if now - self._connected_at > 10.0:
            return
        self._short_connections.append(now)
        while self._short_connections and now - self._short_connections[0] > FLAP_WINDOW_S:
            self._short_connections.popleft()
        if len(self._short_connections) >= FLAP_COUNT and now - self._flap_warned > 300.0:
            self._flap_warned = now
            logger.error(
                "the broker closed %d connections within %d s of opening them: another device may be using"
                " the id %r (client id %s); each takes the connection from the other",
                len(self._short_connections),
                int(FLAP_WINDOW_S),
                self.settings.device,
                self.link.client_id,
            )

    def _handle_publish(self, mid: int) -> None:
        # No bookkeeping here: paho calls this holding its own locks, and the pump may be inside publish().
        # The pump collects acknowledgements every PUBACK_POLL_S anyway; wake it early only when the in-flight
        # window is full and new events wait for room.
        if len(self._inflight) >= self.settings.window:
            self._wake.set()

    def _handle_message(self, message) -> None:
        if message.topic == self.server_topic:
            online = message.payload == b"online"
            if online and not self.server_online:
                # A (re)started server, maybe with a new session that missed what the broker held: expect its
                # confirmations soon, else resend.
                self._confirm_deadline = time.monotonic() + SERVER_GRACE_S
            self.server_online = online
            if message.payload and not self.server_seen.is_set():
                logger.info(
                    "server status seen (%s): sending events", message.payload.decode(errors="replace")
                )
                self.server_seen.set()
                self._wake.set()
            return
        if message.topic == self.ack_topic:
            self._handle_ack(message.payload)
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
            self._status_soon()

    def _handle_ack(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            ranges = [(int(a), int(b), str(c)) for a, b, c in body.get("ranges", [])]
        except (ValueError, TypeError, AttributeError):
            logger.warning("ignoring a malformed ack: %r", payload[:100])
            return
        if body.get("refused"):
            # The server stores nothing from this device (unknown device, no door...): say why, keep the events.
            logger.error("the server does not count this device's events: %s", body["refused"])
        if ranges:
            self._confirms.append(ranges)
            self._wake.set()

    # --- pump thread ----------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Why this device is not doing its job now (empty when it is): the pump dead or stuck, the broker
        unreachable, the outbox full. Served on the kiosk's /healthz."""
        problems = []
        if not self._pump.is_alive():
            problems.append("outbox pump: not running")
        elif time.monotonic() - self._pump_tick > PUMP_STALL_S:
            problems.append(f"outbox pump: stalled for {time.monotonic() - self._pump_tick:.0f} s")
        if not self.link.connected.is_set():
            problems.append("mqtt: not connected to the broker")
        if self.outbox.full:
            problems.append("outbox: full")
        return problems

    def _run_pump(self) -> None:
        next_status = 0.0
        while not self._stop.is_set():
            self._pump_tick = time.monotonic()
            sdnotify.watchdog()  # the pump wakes at least every 0.5 s: a stuck pump stops feeding systemd
            self._wake.wait(PUBACK_POLL_S if self._inflight else 0.5)
            self._wake.clear()
            self._collect_acks()
            now = time.monotonic()
            if self._status_due:  # (re)connected or a command ran: say so before replaying the outbox
                self._status_due = False
                self.publish_status()
                next_status = now + HEARTBEAT_S
            if self._replay or self._front_stale(now) or self._confirmation_overdue(now):
                self._restart_from_outbox()
            # Each confirmation is one delete transaction (one fsync): ingest confirms a batch at a time. A delete
            # lost to a crash only means a resend, which ingest ignores.
            if self._confirms:
                self._apply_confirms()
            self._send_pending()
            self._warn_no_server(now)
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

    def _confirmation_overdue(self, now: float) -> bool:
        """Events were sent, the server is online, yet nothing was confirmed in time: the broker may have lost
        them (killed before saving) or the server's session missed them. Back off on each try."""
        deadline = self._confirm_deadline
        if deadline is None or now < deadline:
            return False
        if not (
            self.link.connected.is_set() and self.server_online and self._sent_upto and self.outbox.queue
        ):
            self._confirm_deadline = None if not self.outbox.queue else now + self._confirm_timeout
            return False
        logger.warning(
            "no confirmation from the server for %.0f s: sending the %d unconfirmed events again",
            self._confirm_timeout,
            self.outbox.queue,
        )
        self._confirm_timeout = min(self._confirm_timeout * 2, CONFIRM_TIMEOUT_MAX_S)
        self._confirm_deadline = now + self._confirm_timeout
        return True

    def _apply_confirms(self) -> None:
        ranges = []
        while self._confirms:
            ranges.extend(self._confirms.popleft())
        if self.outbox.confirm(ranges):
            self._confirm_timeout = self.settings.confirm_timeout
            self._confirm_deadline = time.monotonic() + self._confirm_timeout if self.outbox.queue else None

    def _warn_no_server(self, now: float) -> None:
        """A device that never sees its server (wrong `site`, server never started) says so once."""
        if self.server_seen.is_set() or self._no_server_warned or now - self._started_at < NO_SERVER_WARN_S:
            return
        if self.link.connected.is_set():
            self._no_server_warned = True
            logger.error(
                "connected, but no server status on %s after %d s: nothing is counted until a Footfall server"
                " for site %r runs (is the site id right?); %d event(s) wait in the outbox",
                self.server_topic,
                int(NO_SERVER_WARN_S),
                self.settings.site,
                self.outbox.queue,
            )

    def _restart_from_outbox(self) -> None:
        """Resend everything unconfirmed, in seq order, from the outbox file.

        Done after every (re)connection rather than trusting the MQTT client's in-memory resend, which can lose a
        message published while the link was going down; a resent duplicate is ignored by ingest.
        """
        self._replay = False
        self._inflight.clear()
        with self._fresh_lock:
            self._fresh.clear()
            self._backlog = True
        self._sent_upto = 0

    def _collect_acks(self) -> None:
        """Broker PUBACKs only free the in-flight window; the outbox waits for the server's confirmation."""
        while self._inflight and _acknowledged(self._inflight[0][1]):
            self._inflight.popleft()

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
        if items and self._confirm_deadline is None:
            self._confirm_deadline = time.monotonic() + self._confirm_timeout
