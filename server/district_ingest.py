"""District ingest: N worker processes share one subscription (`$share/<group>/...`) on the district broker, so
each event reaches one worker; each stores its batch in PostgreSQL and only then acknowledges it (manual PUBACK).

A worker that dies leaves its unacknowledged messages in its persistent session on the broker: they are
delivered again when it comes back (systemd restarts it), and the unique (site, device, id) key drops any that
were already stored. Any worker can die at any time: nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import gc
import logging
import threading
from dataclasses import dataclass, field

import psycopg

from footfall import topics
from footfall.clock import utcnow
from footfall.errors import ValidationError
from footfall.link import LinkSettings, MqttLink
from footfall.messages import Checkin, Crossing, decode_event, load_json_object
from footfall.server.district_store import DistrictStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    dsn: str
    host: str
    port: int
    username: str
    password: str
    group: str = "district-ingest"
    prefix: str = "footfall"
    batch_max: int = 2000


def event_row(topic: str, payload: bytes, received: dt.datetime, prefix: str) -> tuple:
    """One stored row from one event message; raises ValidationError for anything off the contract, or that
    PostgreSQL would refuse (a refused row would fail its whole batch again and again)."""
    where = topics.parse(topic, prefix)
    if where.kind != "event":
        raise ValidationError("not an event topic", "topic")
    event = decode_event(payload)
    if "\x00" in event.id:  # the only free text stored: the rest is checked against names and choices
        raise ValidationError("contains NUL, which PostgreSQL text cannot hold", "id")
    direction = count = purpose = adults = children = room = None
    if isinstance(event, Crossing):
        direction, count = event.direction, event.count
    elif isinstance(event, Checkin):
        purpose, adults, children, room = event.purpose, event.adults, event.children, event.room
    return (
        where.site, where.name, event.id, event.seq, event.type, event.ts, received,
        direction, count or 1, purpose, adults, children, room,
    )  # fmt: skip


@dataclass
class LiveBatch:
    """The sites' retained live topics of one batch, as rows for `DistrictStore.store_live`."""

    rooms: list[tuple] = field(default_factory=list)
    devices: list[tuple] = field(default_factory=list)
    alerts: list[tuple] = field(default_factory=list)

    def any(self) -> bool:
        return bool(self.rooms or self.devices or self.alerts)

    def add(self, topic: str, payload: bytes, received: dt.datetime, prefix: str) -> None:
        where = topics.parse(topic, prefix)
        if not payload:  # a cleared retained message
            return
        obj = load_json_object(payload)
        if where.kind == "state":
            occupancy, capacity = _int4(obj["occupancy"], "occupancy"), _int4(obj["capacity"], "capacity")
            name, level = _text(obj.get("name") or where.name, 200), _text(obj["level"], 16)
            entries = obj.get("entries_today")
            entries = _int4(entries, "entries_today") if isinstance(entries, int) else None
            self.rooms.append((where.site, where.name, occupancy, capacity, level, received, name, entries))
        elif where.kind == "status":
            self.devices.append((where.site, where.name, obj.get("state") == "online", received))
        elif where.kind == "alerts":
            alerts = obj.get("alerts")
            if not isinstance(alerts, list):
                raise ValidationError("must be a list", "alerts")
            self.alerts.append((where.site, len(alerts), received))
        else:
            raise ValidationError("not a live topic", "topic")


INT4_MAX = 2**31 - 1


def _int4(value, field: str) -> int:
    """An integer column's value; one out of PostgreSQL's integer range raises (a string that is no number too)."""
    number = int(value)
    if not -INT4_MAX - 1 <= number <= INT4_MAX:
        raise ValidationError("out of range", field)
    return number


def _text(value: object, limit: int) -> str:
    """Shown text, cut to `limit`, with any NUL (which PostgreSQL text cannot hold) made U+FFFD."""
    return str(value)[:limit].replace("\x00", "\ufffd")


class DistrictWorker:
    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.store = DistrictStore(settings.dsn)
        # The network thread appends and sets `_arrived`; the worker's thread takes batches. A deque and an Event
        # rather than a queue.Queue: no lock taken and released per message on either side.
        self._pending: collections.deque = collections.deque()
        self._arrived = threading.Event()
        self.stopping = threading.Event()
        self.stored = 0
        self.link = MqttLink(
            settings.username,  # the district broker locks the client id to the user name
            LinkSettings(
                host=settings.host, port=settings.port, username=settings.username, password=settings.password
            ),  # fmt: skip
            subscriptions=[
                (f"$share/{settings.group}/{topics.all_device_events('+', settings.prefix)}", 1),
                # Live state is retained and small: every worker reads all of it (retained messages are not sent
                # to shared subscriptions), and the newest update wins in the store.
                (topics.all_device_status("+", settings.prefix), 1),
                (topics.all_room_states("+", settings.prefix), 1),
                (f"{settings.prefix}/+/alerts", 1),
            ],
            on_message=self._arrive,
            manual_ack=True,
        )

    def run(self) -> None:
        # What start-up made (modules, classes, the connections) lives as long as the process: frozen, it is left
        # out of every full collection, which otherwise walks all of it for the few thousand messages in flight.
        gc.freeze()
        self.link.start()
        try:
            while not self.stopping.is_set():
                self._arrived.clear()  # before taking: a message appended after this sets it again
                batch = self._take()
                if not batch:
                    self._arrived.wait(0.5)
                    continue
                self._store_until_done(batch)
        finally:
            self.link.stop()
            self.store.close()

    def stop(self) -> None:
        self.stopping.set()

    def _arrive(self, message) -> None:
        self._pending.append(message)
        if not self._arrived.is_set():
            self._arrived.set()

    def _take(self) -> list:
        pending, batch = self._pending, []
        while pending and len(batch) < self.settings.batch_max:
            batch.append(pending.popleft())
        return batch

    def _store_until_done(self, batch: list) -> None:
        """A database error (a restart, a lock conflict) never kills the worker: the batch, still not
        acknowledged, is tried again until it is stored, on a new connection if the old one was lost."""
        delay = 0.2
        while not self.stopping.is_set():
            try:
                if self.store.conn.broken or self.store.conn.closed:
                    self.store.reopen()
                self._store(batch)
                return
            except psycopg.Error as exc:
                logger.warning(
                    "storing a batch of %d failed (%s); trying again in %.1f s", len(batch), exc, delay
                )
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)
                with contextlib.suppress(psycopg.Error):
                    self.store.conn.rollback()

    def _store(self, batch: list) -> None:
        now = utcnow()
        rows, dead, live = [], [], LiveBatch()
        for message in batch:
            try:
                if message.topic.endswith("/event"):
                    rows.append(event_row(message.topic, message.payload, now, self.settings.prefix))
                else:
                    live.add(message.topic, message.payload, now, self.settings.prefix)
            except (ValidationError, ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
                excerpt = bytes(message.payload[:200]).decode("utf-8", "replace")
                dead.append((now, _text(message.topic, 500), _text(exc, 500), _text(excerpt, 200)))
        if live.any():
            self.store.store_live(live.rooms, live.devices, live.alerts)
        self.stored += self.store.store_batch(rows, dead)
        self.link.ack_many(batch)  # only after the commit: an unacknowledged message comes back
