"""The live hub: latest room states and device status from MQTT, fanned out to every open SSE stream.

Each stream owns one bounded `queue.Queue` (cooperative under gevent monkey-patching). A stream that falls
behind is dropped rather than allowed to grow without bound; its browser reconnects and gets the full state again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import queue
import threading
from typing import Any

from footfall import topics
from footfall.clock import format_ts, utcnow
from footfall.errors import ConfigError, ValidationError
from footfall.link import LinkSettings, MqttLink
from footfall.messages import decode_status, encode_json, load_json
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000
MAX_ALERTS_PAYLOAD = 1024 * 1024  # every open help call, retained by ingest: larger than one event
Item = tuple[str, dict[str, Any]]  # ("room" | "device" | "alerts" | "live", payload)


def web_link_settings(site: SiteConfig) -> LinkSettings:
    """The web's own broker account (`[mqtt] web_username`/`web_password`); `username`/`password` are ingest's.

    On the secure broker a client id is its user name, so a web logged in as ingest would close ingest's connection
    each time it connects: refuse to start instead, with the fix in the message.
    """
    mqtt = site.mqtt
    if mqtt.web_username:
        mqtt = dataclasses.replace(mqtt, username=mqtt.web_username, password=mqtt.web_password)
    elif mqtt.username:
        raise ConfigError(
            site.path,
            "mqtt.web_username",
            "the web needs its own MQTT account beside ingest's username: "
            "`footfall device server` prints the web_username and web_password lines",
        )
    return LinkSettings.from_config(mqtt)


class LocalHub:
    """Fan-out without MQTT (tests, or a web process without a broker): changes reach this process's streams."""

    mqtt = False

    def __init__(self, maxsize: int = SUBSCRIBER_QUEUE):
        self.maxsize = maxsize
        self._subscribers: set[queue.Queue] = set()
        self._lock = threading.Lock()
        self._rooms: dict[str, dict[str, Any]] = {}

    @property
    def connected(self) -> bool:
        return True

    def live_status(self) -> dict[str, Any]:
        """What the dashboard's pill shows: is this server hearing the bus, is ingest up, when data last came."""
        return {"live": True, "broker": True, "ingest": True, "last_data": None}

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(self.maxsize)
        with self._lock:
            self._subscribers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._subscribers.discard(q)

    def is_subscribed(self, q: queue.Queue) -> bool:
        with self._lock:
            return q in self._subscribers

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            try:
                q.put_nowait((kind, data))
            except queue.Full:
                logger.warning("a live stream fell %d messages behind; dropping it", self.maxsize)
                self.unsubscribe(q)

    def room_states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._rooms)

    def _take_room_state(self, state: dict[str, Any]) -> bool:
        """Remember a room state; False when it is older than the one already known (out-of-order delivery)."""
        with self._lock:
            known = self._rooms.get(state["room"])
            if known is not None and str(state.get("ts", "")) < str(known.get("ts", "")):
                return False
            self._rooms[state["room"]] = state
        return True

    def publish_room_state(self, state: dict[str, Any]) -> None:
        if self._take_room_state(state):
            self.broadcast("room", state)

    def start(self) -> LocalHub:
        return self

    def stop(self) -> None:
        pass


class LiveHub(LocalHub):
    """LocalHub plus an MQTT link: subscribes to room states and device status, publishes staff corrections."""

    mqtt = True

    def __init__(self, site: SiteConfig, maxsize: int = SUBSCRIBER_QUEUE, client_id: str | None = None):
        super().__init__(maxsize)
        self.site = site
        self.rejected = 0  # messages that failed validation or handling (shown in logs, counted for metrics)
        prefix = site.prefix
        self.link = MqttLink(
            client_id or f"footfall-server-{site.id}-web-{os.getpid()}",
            web_link_settings(site),
            clean_session=True,
            subscriptions=[
                (topics.all_room_states(site.id, prefix), 1),
                (topics.all_device_status(site.id, prefix), 1),
                (topics.alerts(site.id, prefix), 1),
                (topics.server_status(site.id, prefix), 1),
            ],
            on_message=self._on_message,
            on_connect=self._link_up,
            on_disconnect=self._link_down,
        )
        # Honest screens: the link's and ingest's state, and when the last message arrived (docs/alerts.md).
        started = utcnow()
        self.link_down_since: dt.datetime | None = started
        self.ingest_online: bool | None = None  # None until ingest's retained status is seen
        self.ingest_down_since: dt.datetime | None = started
        self.last_data: dt.datetime | None = None

    def live_status(self) -> dict[str, Any]:
        broker = self.connected
        ingest = bool(broker and self.ingest_online)
        return {
            "live": broker and ingest,
            "broker": broker,
            "ingest": ingest,
            "last_data": format_ts(self.last_data) if self.last_data else None,
        }

    def ingest_problem(self) -> tuple[dt.datetime | None, str]:
        """Since when nothing is being counted, as far as this process can tell, and why (None: all well)."""
        if self.link_down_since is not None:
            return self.link_down_since, "the web process cannot reach the MQTT broker"
        if self.ingest_down_since is not None:
            return self.ingest_down_since, "ingest is offline (its server status on the broker says so)"
        return None, ""

    def _link_up(self, _session_present: bool) -> None:
        self.link_down_since = None
        self.broadcast("live", self.live_status())

    def _link_down(self) -> None:
        self.link_down_since = utcnow()
        self.broadcast("live", self.live_status())

    @property
    def connected(self) -> bool:
        return self.link.connected.is_set()

    def start(self) -> LiveHub:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    def publish_room_state(self, state: dict[str, Any]) -> None:
        """A staff correction: pass it to this process's streams at once, and ask ingest to republish the room.

        Ingest is the only publisher of retained room state: it reads the room from the store in order with its
        batches, so a correction and a crossing in the same instant cannot leave the older state retained.
        """
        super().publish_room_state(state)
        if not self.connected:
            logger.warning("MQTT link down: the republish of %s waits in paho's queue", state["room"])
        self.ask_ingest({"v": 1, "cmd": "republish-room", "room": state["room"]})

    def ask_ingest(self, command: dict[str, Any]) -> None:
        """A server command for ingest (republish-room, republish-alerts, republish-schedule): ingest is the only
        publisher of retained room state, alerts and schedule. Waits in paho's queue while the link is down."""
        self.link.publish(topics.server_cmd(self.site.id, self.site.prefix), encode_json(command), qos=1)

    def _on_message(self, message) -> None:
        """Runs on the MQTT thread: keep it short and never raise (a retained bad message comes back on every
        reconnect; it is counted in `rejected` and logged, and the link goes on)."""
        if message.topic == topics.server_status(self.site.id, self.site.prefix):
            self._ingest_status(message.payload)
            return
        if not getattr(message, "retain", False):  # a retained copy at subscribe time is old news
            self.last_data = utcnow()
        try:
            self.take(message.topic, message.payload)
        except ValidationError as exc:
            self.rejected += 1
            logger.warning("ignoring %s: %s", message.topic, exc)
        except Exception:  # noqa: BLE001 - a bug must not stop the live view either
            self.rejected += 1
            logger.exception("ignoring %s: it could not be handled", message.topic)

    def take(self, topic: str, payload: bytes) -> None:
        """Decode a message and pass it to the streams; raises ValidationError for a bad one."""
        item = self.decode(topic, payload)
        if item is None:
            return
        kind, data = item
        if kind == "room":
            if self._take_room_state(data):
                self.broadcast("room", data)
        else:
            self.broadcast(kind, data)

    def _ingest_status(self, payload: bytes) -> None:
        online = payload == b"online"
        if online != self.ingest_online:
            self.ingest_online = online
            self.ingest_down_since = None if online else utcnow()
            self.broadcast("live", self.live_status())

    def decode(self, topic: str, payload: bytes) -> Item | None:
        """A message on a subscribed topic -> ("room", state) or ("device", device JSON); None to ignore."""
        parsed = topics.parse(topic, self.site.prefix)
        if parsed.site == self.site.id and parsed.kind == "alerts" and payload:
            alerts = load_json(payload, max_bytes=MAX_ALERTS_PAYLOAD, max_depth=4)
            if not isinstance(alerts, dict) or not isinstance(alerts.get("alerts"), list):
                raise ValidationError("must be an object with a list", "alerts")
            return "alerts", alerts
        if parsed.site != self.site.id or parsed.name is None:
            return None
        if parsed.kind == "state":
            if not payload:
                return None  # a cleared retained message
            state = load_json(payload, max_depth=4)
            if not isinstance(state, dict) or state.get("room") != parsed.name:
                raise ValidationError("does not match its topic", "room")
            return "room", state
        if parsed.kind == "status":
            if not payload:
                return None
            device = self.site.devices_by_id.get(parsed.name)
            if device is None:
                return None
            status = decode_status(payload)
            return "device", {
                "id": device.id,
                "kind": status.kind or device.kind,
                "state": status.state,
                "last_seen": format_ts(utcnow()),
                "queue": status.queue,
                "health": status.health,
            }
        return None
