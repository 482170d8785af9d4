"""Ingest: validated events -> store (one transaction per batch) -> the room states that changed.

The Ingestor holds what ingest does with a batch of messages; server/ingest_service.py runs it on MQTT, and
acknowledges messages to the broker (manual PUBACK) only after their batch is committed, so a killed ingest loses
nothing: the broker redelivers what was not acknowledged, and the unique (device, id) key drops repeats.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from footfall import topics
from footfall.clock import day_bounds, format_ts, local_day, utcnow
from footfall.errors import ValidationError
from footfall.messages import (
    Checkin,
    Crossing,
    Help,
    decode_event,
    decode_status,
    load_json_object,
)
from footfall.server import occupancy
from footfall.server.alerting import raise_alert
from footfall.server.device_watch import DeviceWatch
from footfall.server.rooms import room_state, today
from footfall.server.store import EVENT_COLUMNS, Store, Tx, store_unavailable
from footfall.site import Device, Door, SiteConfig

logger = logging.getLogger(__name__)

ROLLUP_EVERY = dt.timedelta(minutes=5)
UNKNOWN_DEVICE = "(unknown)"  # dead letters from topics that name no device of the site file count here
COUNTING = ("batch", "stored", "none")
RETRY_MAX_S = 10.0  # store unavailable (disk full): retry the batch, unacknowledged, at most this far apart


class DeadLetterLimit:
    """At most `per_minute` dead letters stored per device per minute; the rest are only counted (a device
    sending junk at thousands a second must not fill the disk)."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._window = 0
        self._used: dict[str, int] = {}

    def allow(self, device: str, now: float | None = None) -> bool:
        window = int((time.monotonic() if now is None else now) // 60)
        if window != self._window:
            self._window, self._used = window, {}
        used = self._used.get(device, 0)
        self._used[device] = used + 1
        return used < self.per_minute


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    retain: bool = False  # a retained message replayed by the broker: old, so no measure of a device's clock


@dataclass(frozen=True)
class Prepared:
    """A validated event, ready to store: its row and what storing it changes."""

    row: dict[str, Any]
    event: Crossing | Checkin | Help
    door: Door | None
    when: dt.datetime
    day: dt.date

    @property
    def key(self) -> tuple[str, str]:
        return self.row["device"], self.row["id"]


class Ingestor:
    """Turns a batch of raw messages into stored events, dead letters, device rows and changed room states."""

    def __init__(self, site: SiteConfig, store: Store, counting: str = "batch"):
        self.site = site
        self.store = store
        # Who counts live occupancy. "batch": this process is the site's only ingest and counts each batch it
        # stores. With ingest workers ([server] ingest_workers > 1) the events are shared out among processes:
        # "stored": the first one counts every crossing any of them stored, read back from the store in row id
        # order (`count_stored`); "none": the others store, acknowledge and confirm, and count nothing.
        if counting not in COUNTING:
            raise ValueError(f"counting must be one of {', '.join(COUNTING)}")
        self.counting = counting
        self.stored = 0  # new events this process has stored since it started (its heartbeat tells)
        self._read_to: int | None = None  # "stored": the last event row id counted
        self._built_at: dict[str, int] = {}  # "stored": the row id up to which a room's log was read whole
        self.tolerance = dt.timedelta(seconds=site.server.future_tolerance_s)
        self.alerts_changed = False  # set when a batch raised a help alert; the service republishes alerts
        self.lags: list[float] = []  # receive time - event time of the last batch's new events (metrics)
        self.watch = DeviceWatch(site)  # unknown devices, wrong site, shared ids, clock skew, seq restarts
        # After each batch: device -> [(seq, id)] now committed (new or already stored), in arrival order.
        self.confirmed: dict[str, list[tuple[int, str]]] = {}
        self.requested_rooms: set[str] = (
            set()
        )  # `republish-room` commands on server/cmd, taken by the service
        self.cleared_alerts: list[int] = []  # `republish-alerts` and `republish-schedule` likewise
        self.republish_alerts = self.republish_schedule = False
        self.dead_letter_limit = DeadLetterLimit(site.server.dead_letters_per_device_minute)
        self.dead_letter_max = site.server.dead_letters_max
        # Live occupancy in event-time order: each room's day so far (occupancy.RoomLog), which puts a late event
        # (a door's backlog) in its place; a room not yet counted by this process is read from the store.
        self._logs: dict[str, occupancy.RoomLog] = {}
        self._logs_day: dt.date | None = None
        self._corrections_seen = 0  # adjustments row id: a staff correction has its room recounted

    def process(self, batch: list[Incoming], now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Store a batch in one transaction; return the room states that changed (for publishing).

        Events are validated one by one, then stored together: repeats (within the batch or already stored) are
        found with one query per device, the new rows go in with one executemany, and their effects (occupancy,
        alerts) are applied in arrival order.
        """
        now = now or utcnow()
        live_day = today(self.site, now)
        # Per-batch constants, so the per-event work stays small.
        self._received = format_ts(now)
        self._live_bounds = day_bounds(live_day, self.site.timezone, self.site.day_starts)
        early = [self._prepare_early(item, now, live_day) for item in batch]
        with self.store.transaction() as tx:
            stats = {"events": 0, "duplicates": 0, "dead_letters": 0, "dead_letters_dropped": 0}
            prepared: dict[tuple[str, str], Prepared] = {}
            for item, ready in zip(batch, early, strict=True):
                try:
                    ready = ready or self._prepare(tx, item, now, live_day)
                except ValidationError as exc:
                    self._dead_letter(tx, item, str(exc), exc.field, now, stats)
                    continue
                except Exception as exc:  # noqa: BLE001 - one message must never stop ingest
                    if store_unavailable(exc):
                        raise
                    logger.exception("dead-lettering a message on %s that failed", item.topic)
                    self._dead_letter(
                        tx, item, f"could not process: {type(exc).__name__}: {exc}", None, now, stats
                    )
                    continue
                if ready is None:
                    continue
                if ready.key in prepared:
                    stats["duplicates"] += 1
                    stats["duplicates:" + ready.key[0]] = stats.get("duplicates:" + ready.key[0], 0) + 1
                else:
                    prepared[ready.key] = ready
            if self.counting == "stored" and self._read_to is None:
                # From here on this process counts by reading back; what was stored before is read per room
                # when first touched (`recount_room`), this batch included.
                self._read_to, self._logs, self._built_at = tx.last_event_pk(), {}, {}
            inserted = tx.insert_new_events([p.row for p in prepared.values()])
            stored = [key for key in prepared if key not in inserted]
            fresh = [p for key, p in prepared.items() if key in inserted]
            stats["duplicates"] += len(prepared) - len(fresh)
            stats["events"] += len(fresh)
            # Per-device counts for /metrics (footfall_events_ingested_total{device=...}), in the same transaction.
            for key in stored:
                stats["duplicates:" + key[0]] = stats.get("duplicates:" + key[0], 0) + 1
            for p in fresh:
                stats["events:" + p.row["device"]] = stats.get("events:" + p.row["device"], 0) + 1
            self.lags = [(now - p.event.ts).total_seconds() for p in fresh]
            by_device: dict[str, list[tuple[int, str]]] = {}
            for p in fresh:
                by_device.setdefault(p.row["device"], []).append((p.row["seq"], p.row["id"]))
            for device, events in by_device.items():
                self.watch.events(tx, device, events, now)
            if self.watch.changed:
                self.watch.changed, self.alerts_changed = False, True
            arrived: dict[str, list[tuple]] = {}
            for p in fresh:
                self._apply(tx, p, live_day, arrived)
            rooms = self._count(tx, arrived, live_day)
            # A few statements per batch, not one per room, device or counter: with ingest workers each batch
            # holds the store's write lock, and on PostgreSQL every statement is a round trip.
            tx.put_rooms_counts(rooms, now)
            tx.mark_seen(sorted({p.row["device"] for p in prepared.values()}), self._received)
            if stats["dead_letters"] > stats["dead_letters_dropped"]:
                stats["dead_letters_pruned"] = tx.prune_dead_letters(self.dead_letter_max)
            tx.bump_all(stats)
        confirmed: dict[str, list[tuple[int, str]]] = {}
        for p in prepared.values():
            confirmed.setdefault(p.row["device"], []).append((p.row["seq"], p.row["id"]))
        self.confirmed = confirmed  # only once committed: the devices delete what is listed here
        self.stored += stats["events"]
        return [room_state(self.site.rooms_by_id[r], c, now) for r, c in rooms.items() if c.day == live_day]

    def process_guarded(self, batch: list[Incoming], now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """`process`, and if the batch fails for a reason other than the store, each message alone: the one that
        fails is dead-lettered in a transaction of its own. Raises only when the store is unavailable."""
        try:
            return self.process(batch, now)
        except Exception as exc:
            if store_unavailable(exc):
                raise
            logger.exception("a batch of %d failed; storing its messages one by one", len(batch))
        changed: list[dict[str, Any]] = []
        confirmed: dict[str, list[tuple[int, str]]] = {}
        for item in batch:
            try:
                changed += self.process([item], now)
                for device, events in self.confirmed.items():
                    confirmed.setdefault(device, []).extend(events)
            except Exception as exc:
                if store_unavailable(exc):
                    raise
                with self.store.transaction() as tx:
                    stats = {"dead_letters": 0, "dead_letters_dropped": 0}
                    reason = f"could not store: {type(exc).__name__}: {exc}"
                    self._dead_letter(tx, item, reason, None, now or utcnow(), stats)
                    for name, n in stats.items():
                        tx.bump(name, n)
        self.confirmed = confirmed
        return changed

    def _dead_letter(
        self, tx: Tx, item: Incoming, reason: str, field: str | None, now: dt.datetime, stats: dict[str, int]
    ) -> None:
        """Store a rejected message (topic, excerpt, reason), unless its device is over its rate: then count it."""
        try:
            name = topics.parse(item.topic, self.site.prefix).name
        except ValidationError:
            name = None
        device = name if name in self.site.devices_by_id else UNKNOWN_DEVICE
        stored = self.dead_letter_limit.allow(device)
        if stored:
            tx.dead_letter(item.topic, item.payload, reason[:500], now)
        else:
            stats["dead_letters_dropped"] += 1
        tx.count_dead_letter(device, field or "error", stored)
        stats["dead_letters"] += 1

    def take_requested_rooms(self) -> set[str]:
        rooms, self.requested_rooms = self.requested_rooms, set()
        return rooms

    def take_requested_republish(self) -> tuple[list[int], bool, bool]:
        """(alerts cleared by staff, republish alerts?, republish schedule?) asked since the last call."""
        out = (self.cleared_alerts, self.republish_alerts, self.republish_schedule)
        self.cleared_alerts, self.republish_alerts, self.republish_schedule = [], False, False
        return out

    def _command(self, item: Incoming) -> None:
        """A server command from the web process: `{"v":1,"cmd":"republish-room","room":...}` after a staff
        correction, `republish-alerts` (with the `cleared` alert ids) after a staff clear, `republish-schedule`."""
        command = load_json_object(item.payload)
        if command.get("cmd") == "republish-alerts":
            ids = command.get("cleared", [])
            if (
                not isinstance(ids, list)
                or len(ids) > 1000
                or not all(type(i) is int and 0 < i < 2**63 for i in ids)
            ):
                raise ValidationError("must be a list of at most 1000 alert ids", "cleared")
            self.cleared_alerts += ids
            self.republish_alerts = True
            return
        if command.get("cmd") == "republish-schedule":
            self.republish_schedule = True
            return
        if command.get("cmd") != "republish-room":
            raise ValidationError(f"unknown command {str(command.get('cmd'))[:40]!r}", "cmd")
        room = command.get("room")
        if not isinstance(room, str) or room not in self.site.rooms_by_id:
            raise ValidationError("must be a room of the site file", "room")
        self.requested_rooms.add(room)

    def _prepare(self, tx: Tx, item: Incoming, now: dt.datetime, live_day: dt.date) -> Prepared | None:
        """Validate one message (raise ValidationError if bad); a status message is stored at once (None)."""
        topic = topics.parse(item.topic, self.site.prefix)
        if topic.kind == "server-status" or (topic.site != self.site.id and topic.kind == "status"):
            if topic.site != self.site.id:
                self.watch.foreign(tx, topic.site, topic.kind, topic.name, item.payload, now)
            return None
        if topic.site != self.site.id:
            raise ValidationError(f"site {topic.site!r} is not this server's site {self.site.id!r}", "topic")
        if topic.kind == "server-cmd":
            self._command(item)
            return None
        device = self.site.devices_by_id.get(topic.name or "")
        if device is None:
            if topic.kind in ("event", "status") and topic.name:
                self.watch.unknown_device(tx, topic.name, now)
            raise ValidationError(f"unknown device {topic.name!r}", "topic")
        if topic.kind == "status":
            status = decode_status(item.payload)
            fields: dict[str, Any] = {"state": status.state, "last_seen": self._received}
            if status.state == "online":
                fields.update(
                    kind=status.kind,
                    queue=status.queue,
                    last_seq=status.last_seq,
                    version=status.version,
                    health=status.health,
                )
                self.watch.status(tx, device.id, fields, status.ts, item.retain, now)
            tx.upsert_device(device.id, fields)
            return None
        if topic.kind != "event":
            raise ValidationError(f"ingest does not take {topic.kind} messages", "topic")
        return self._event(item, device, now, live_day)

    def _prepare_early(self, item: Incoming, now: dt.datetime, live_day: dt.date) -> Prepared | None:
        """The common case before the store's transaction (with ingest workers, outside its write lock, so the
        workers decode at once): a valid event of a known device of this site. None for anything else: `_prepare`
        handles it, or dead-letters it, in the transaction."""
        try:
            topic = topics.parse(item.topic, self.site.prefix)
            device = self.site.devices_by_id.get(topic.name or "")
            if topic.kind != "event" or topic.site != self.site.id or device is None:
                return None
            return self._event(item, device, now, live_day)
        except Exception:  # noqa: BLE001 - done again, and dead-lettered, in the transaction
            return None

    def _event(self, item: Incoming, device: Device, now: dt.datetime, live_day: dt.date) -> Prepared:
        event = decode_event(item.payload)
        if isinstance(event, Crossing) and device.kind != "counter":
            raise ValidationError(f"device {device.id!r} is a {device.kind}, not a counter", "type")
        if isinstance(event, Checkin | Help) and device.kind != "kiosk":
            raise ValidationError(f"device {device.id!r} is a {device.kind}, not a kiosk", "type")
        flag = None
        when = event.ts
        if event.clock == "unsynced":
            flag, when = "unsynced", now
        elif event.ts > now + self.tolerance:
            flag, when = "future", now
        ts_text = format_ts(when)
        start, end = self._live_bounds
        day = live_day if start <= when < end else local_day(when, self.site.timezone, self.site.day_starts)
        row: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
        row.update(
            device=device.id,
            id=event.id,
            seq=event.seq,
            type=event.type,
            ts=ts_text,
            device_ts=format_ts(event.ts) if flag else ts_text,
            received_at=self._received,
            day=day.isoformat(),
            clock_flag=flag,
        )
        door = self.site.doors_by_device.get(device.id)
        if isinstance(event, Crossing):
            if door is None:
                raise ValidationError(f"counter {device.id!r} watches no door in the site file", "topic")
            row.update(door=door.id, direction=event.direction, count=event.count)
        elif isinstance(event, Checkin):
            if event.room is not None and event.room not in self.site.rooms_by_id:
                raise ValidationError(f"room {event.room!r} is not in the site file", "room")
            row.update(
                purpose=event.purpose,
                adults=event.adults,
                children=event.children,
                activity=event.activity,
                member=event.member,
                room=event.room or device.room,
            )
        else:
            row.update(room=device.room)
        return Prepared(row, event, door, when, day)

    def _apply(self, tx: Tx, p: Prepared, live_day: dt.date, arrived: dict[str, list[tuple]]) -> None:
        """What a newly stored event changes: today's occupancy, or the open alerts."""
        if isinstance(p.event, Help):
            # One open help alert per kiosk: repeated taps join it (rate limit), staff clear it once.
            raise_alert(
                tx, "help", p.row["device"], "help call", p.when, room=p.row["room"], event_id=p.event.id
            )
            self.alerts_changed = True
        elif isinstance(p.event, Crossing) and p.day == live_day:
            item = (p.row["ts"], 0, p.row["device"], p.event.direction, p.event.count)
            for room, _delta in occupancy.moves(p.door, p.event.direction, p.event.count):
                arrived.setdefault(room, []).append(item)

    def _count(
        self, tx: Tx, arrived: dict[str, list[tuple]], live_day: dt.date
    ) -> dict[str, occupancy.RoomCounts]:
        """The rooms whose counts this batch changed, and their counts (none when counting is "none")."""
        if self.counting == "none":
            return {}
        if live_day != self._logs_day:
            self._logs, self._logs_day, self._built_at = {}, live_day, {}
        self._forget_corrected_rooms(tx)
        if self.counting == "stored":
            arrived = self._stored_since(tx, live_day)
        rooms: dict[str, occupancy.RoomCounts] = {}
        for room, items in arrived.items():
            log = self._logs.get(room)
            # The store already holds these events: a room read from it needs none of `items` added.
            rooms[room] = log.add(items) if log else self.recount_room(tx, room, live_day)
        return rooms

    def _stored_since(self, tx: Tx, live_day: dt.date) -> dict[str, list[tuple]]:
        """Today's crossings stored (by any ingest worker) since the last read, by room; a room's log read whole
        after one of them (`recount_room`) already holds it."""
        rows = tx.crossings_after(self._read_to)
        arrived: dict[str, list[tuple]] = {}
        day = live_day.isoformat()
        for pk, row_day, ts, device, direction, count in rows:
            door = self.site.doors_by_device.get(device)
            if row_day != day or door is None:
                continue
            for room, _delta in occupancy.moves(door, direction, count):
                if pk > self._built_at.get(room, 0):
                    arrived.setdefault(room, []).append((ts, 0, device, direction, count))
        if rows:
            self._read_to = rows[-1][0]
        return arrived

    def count_stored(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Counting "stored": count what the other workers stored since the last batch (called when idle);
        returns the room states that changed."""
        now = now or utcnow()
        live_day = today(self.site, now)
        with self.store.transaction() as tx:
            if self._read_to is None:
                self._read_to, self._logs, self._built_at = tx.last_event_pk(), {}, {}
            rooms = self._count(tx, {}, live_day)
            tx.put_rooms_counts(rooms, now)
        return [room_state(self.site.rooms_by_id[r], c, now) for r, c in rooms.items() if c.day == live_day]

    def _forget_corrected_rooms(self, tx: Tx) -> None:
        """A staff correction (web process) since the last batch: its room is recounted at its next event, so an
        event from before the correction lands before it, not on top of it. One indexed query per batch."""
        top = tx.last_adjustment()
        if top != self._corrections_seen:
            for room in tx.rooms_adjusted_since(self._corrections_seen):
                self._logs.pop(room, None)
            self._corrections_seen = top

    def recount_room(self, tx: Tx, room: str, day: dt.date) -> occupancy.RoomCounts:
        """A room's live counts replayed from today's stored crossings and staff corrections (`occupancy.replay`);
        a center's day is about 1,200 events."""
        devices = [d for d, door in self.site.doors_by_device.items() if room in (door.inside, door.outside)]
        start, end = (format_ts(t) for t in day_bounds(day, self.site.timezone, self.site.day_starts))
        crossings = tx.day_crossing_rows(day, devices)
        corrections = tx.corrections(start, end, room)
        log = occupancy.RoomLog.of_day(room, day, self.site.doors_by_device, crossings, corrections)
        if day != self._logs_day:
            self._logs, self._logs_day, self._built_at = {}, day, {}
        self._logs[room] = log
        if self.counting == "stored":
            self._built_at[room] = tx.last_event_pk()
        return log.counts
