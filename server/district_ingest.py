"""District ingest: N worker processes share one subscription (`$share/<group>/...`) on the district broker, so
each event reaches one worker; each stores its batch in PostgreSQL and only then acknowledges it (manual PUBACK).

A worker that dies leaves its unacknowledged messages in its persistent session on the broker: they are
delivered again when it comes back (systemd restarts it), and the unique (site, device, id) key drops any that
were already stored. Any worker can die at any time: nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from dataclasses import dataclass

from footfall import topics
from footfall.clock import utcnow
from footfall.errors import ValidationError
from footfall.link import LinkSettings, MqttLink
from footfall.messages import Checkin, Crossing, decode_event
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
    """One stored row from one event message; raises ValidationError for anything off the contract."""
    where = topics.parse(topic, prefix)
    if where.kind != "event":
        raise ValidationError("not an event topic", "topic")
    event = decode_event(payload)
    direction = count = purpose = adults = children = room = None
    if isinstance(event, Crossing):
        direction, count = event.direction, event.count
    elif isinstance(event, Checkin):
        purpose, adults, children, room = event.purpose, event.adults, event.children, event.room
    return (
        where.site, where.name, event.id, event.seq, event.type, event.ts, received,
        direction, count or 1, purpose, adults, children, room,
    )  # fmt: skip


class DistrictWorker:
    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.store = DistrictStore(settings.dsn)
        self._queue: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.stored = 0
        self.link = MqttLink(
            settings.username,  # the district broker locks the client id to the user name
            LinkSettings(
                host=settings.host, port=settings.port, username=settings.username, password=settings.password
            ),  # fmt: skip
            subscriptions=[(f"$share/{settings.group}/{topics.all_device_events('+', settings.prefix)}", 1)],
            on_message=lambda message: self._queue.put(message),
            manual_ack=True,
        )

    def run(self) -> None:
        self.link.start()
        try:
            while not self.stopping.is_set():
                try:
                    batch = [self._queue.get(timeout=0.5)]
                except queue.Empty:
                    continue
                while len(batch) < self.settings.batch_max:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                self._store(batch)
        finally:
            self.link.stop()
            self.store.close()

    def stop(self) -> None:
        self.stopping.set()

    def _store(self, batch: list) -> None:
        now = utcnow()
        rows, dead = [], []
        for message in batch:
            try:
                rows.append(event_row(message.topic, message.payload, now, self.settings.prefix))
            except (ValidationError, ValueError, TypeError, OverflowError, RecursionError) as exc:
                excerpt = bytes(message.payload[:200]).decode("utf-8", "replace")
                dead.append((now, message.topic, str(exc)[:500], excerpt))
        self.stored += self.store.store_batch(rows, dead)
        for message in batch:  # only after the commit: an unacknowledged message comes back
            if message.qos:
                self.link.ack(message.mid, message.qos)
