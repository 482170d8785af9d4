"""The store's queries for ingest and the live screens: events, live room counts, devices, dead letters, metrics,
staff corrections and alerts. Written once for both backends (server/store_sql.py says how); writes belong in a
`store.transaction()`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from footfall.clock import format_ts, parse_ts
from footfall.server.occupancy import RoomCounts
from footfall.server.store_sql import Sql

EXCERPT_BYTES = 256
EVENT_COLUMNS = (
    "device", "id", "seq", "type", "ts", "device_ts", "received_at", "day", "clock_flag", "door", "direction",
    "count", "purpose", "adults", "children", "activity", "member", "room",
)  # fmt: skip
INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    " ON CONFLICT (device, id) DO NOTHING"
)
ROOM_COLUMNS = (
    "room",
    "day",
    "occupancy",
    "raw_net",
    "corrected",
    "entries",
    "exits",
    "peak",
    "peak_at",
    "updated_at",
)
PUT_ROOM = (
    f"INSERT INTO rooms_live VALUES ({', '.join('?' * len(ROOM_COLUMNS))}) ON CONFLICT (room) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in ROOM_COLUMNS[1:])
)


def event_values(row: dict[str, Any]) -> tuple:
    return tuple(row.get(c) for c in EVENT_COLUMNS)


def counts_from_row(row: dict[str, Any]) -> RoomCounts:
    return RoomCounts(
        day=dt.date.fromisoformat(row["day"]),
        occupancy=row["occupancy"],
        raw_net=row["raw_net"],
        corrected=row["corrected"],
        entries=row["entries"],
        exits=row["exits"],
        peak=row["peak"],
        peak_at=parse_ts(row["peak_at"]) if row["peak_at"] else None,
    )


def marks(values: list | tuple) -> str:
    return ",".join("?" * len(values))


class LiveQueries:
    sql: Sql
    text_holds_nul = True  # PostgreSQL's text cannot hold U+0000: a dead letter's excerpt shows it as U+FFFD

    # --- events ---------------------------------------------------------------------------------

    def insert_event(self, row: dict[str, Any]) -> bool:
        """Insert a raw event; False when (device, id) is already stored (a duplicate delivery)."""
        return self.sql.run(INSERT_EVENT, event_values(row)) == 1

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        """Insert new events (ingest has already dropped repeats; ON CONFLICT DO NOTHING stays as the safety net)."""
        self.sql.many(INSERT_EVENT, [event_values(r) for r in rows])

    def insert_new_events(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert the events not stored yet; returns the (device, id) keys of those inserted."""
        stored = self.stored_event_keys([(r["device"], r["id"]) for r in rows])
        self.insert_events([r for r in rows if (r["device"], r["id"]) not in stored])
        return {(r["device"], r["id"]) for r in rows} - stored

    def stored_event_keys(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (device, id) pairs are already stored: one query per device and 500 ids."""
        ids_by_device: dict[str, list[str]] = {}
        for device, event_id in keys:
            ids_by_device.setdefault(device, []).append(event_id)
        found: set[tuple[str, str]] = set()
        for device, ids in ids_by_device.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                rows = self.sql.tuples(
                    f"SELECT id FROM events WHERE device=? AND id IN ({marks(chunk)})", (device, *chunk)
                )
                found.update((device, r[0]) for r in rows)
        return found

    def day_crossings(self, day: dt.date) -> list[tuple[dt.datetime, str, str, int]]:
        rows = self.day_crossing_rows(day)
        return [(parse_ts(r[0]), r[1], r[2], r[3]) for r in rows]

    def day_crossing_rows(
        self, day: dt.date, devices: list[str] | None = None
    ) -> list[tuple[str, str, str, int]]:
        """(ts, device, direction, count) of a day's crossings, of the given devices or all."""
        only = f" AND device IN ({marks(devices)})" if devices is not None else ""
        return self.sql.tuples(
            "SELECT ts, device, direction, count FROM events WHERE day=? AND type='crossing'" + only,
            (day.isoformat(), *(devices or ())),
        )

    def day_checkins(self, day: dt.date) -> list[dict[str, Any]]:
        return self.sql.rows(
            "SELECT ts, device, purpose, adults, children, activity, member, room FROM events"
            " WHERE day=? AND type='checkin'",
            (day.isoformat(),),
        )

    def last_event_pk(self) -> int:
        """The newest event's row id (0 if none): with ingest workers, writers hold the store's write lock, so
        row ids grow in commit order and everything after a reader's last one is what it has not seen."""
        return self.sql.scalar("SELECT coalesce(max(pk), 0) FROM events")

    def crossings_after(self, pk: int) -> list[tuple[int, str, str, str, str, int]]:
        """(pk, day, ts, device, direction, count) of the crossings stored after row id `pk`, in row id order."""
        return self.sql.tuples(
            "SELECT pk, day, ts, device, direction, count FROM events WHERE pk > ? AND type='crossing' ORDER BY pk",
            (pk,),
        )

    def highest_seq(self, device: str, besides: list[str] | None = None) -> int:
        """The highest seq stored for a device (0 if none), leaving out the event ids `besides`."""
        if besides:
            return self.sql.scalar(
                f"SELECT coalesce(max(seq), 0) FROM events WHERE device=? AND id NOT IN ({marks(besides)})",
                (device, *besides),
            )
        return self.sql.scalar("SELECT coalesce(max(seq), 0) FROM events WHERE device=?", (device,))

    def seq_taken(self, device: str, seq: int, event_id: str) -> bool:
        """Whether another event of the device already has this seq."""
        query = "SELECT 1 FROM events WHERE device=? AND seq=? AND id != ? LIMIT 1"
        return self.sql.scalar(query, (device, seq, event_id)) is not None

    def seqs_taken(self, device: str, events: list[tuple[int, str]]) -> set[tuple[int, str]]:
        """Of these (seq, id) of a device, those whose seq another event id of the device already has: one query
        per 500, where `seq_taken` is one per event."""
        found: set[tuple[int, str]] = set()
        for i in range(0, len(events), 500):
            chunk = events[i : i + 500]
            seqs = sorted({seq for seq, _id in chunk})
            holders: dict[int, set[str]] = {}
            query = f"SELECT seq, id FROM events WHERE device=? AND seq IN ({marks(seqs)})"
            for seq, event_id in self.sql.tuples(query, (device, *seqs)):
                holders.setdefault(seq, set()).add(event_id)
            found.update((seq, event_id) for seq, event_id in chunk if holders.get(seq, set()) - {event_id})
        return found

    def count(self, table: str, where: str = "1=1", params: tuple = ()) -> int:
        """Rows of a table (tests and checks); `where` is portable SQL with '?' placeholders."""
        return self.sql.scalar(f"SELECT count(*) FROM {table} WHERE {where}", params)

    # --- live rooms -----------------------------------------------------------------------------

    def room_counts(self, room: str) -> RoomCounts | None:
        row = self.sql.one("SELECT * FROM rooms_live WHERE room=?", (room,))
        return counts_from_row(row) if row else None

    def put_room_counts(self, room: str, c: RoomCounts, now: dt.datetime) -> None:
        self.put_rooms_counts({room: c}, now)

    def put_rooms_counts(self, rooms: dict[str, RoomCounts], now: dt.datetime) -> None:
        """Several rooms' live counts in one executemany (one round trip on PostgreSQL, in a pipeline)."""
        updated = format_ts(now)
        self.sql.many(
            PUT_ROOM,
            [
                (room, c.day.isoformat(), c.occupancy, c.raw_net, c.corrected, c.entries, c.exits, c.peak,
                 format_ts(c.peak_at) if c.peak_at else None, updated)
                for room, c in rooms.items()
            ],
        )  # fmt: skip

    def rooms_live(self) -> dict[str, RoomCounts]:
        return {row["room"]: counts_from_row(row) for row in self.sql.rows("SELECT * FROM rooms_live")}

    def ping(self) -> None:
        """One cheap read: raises when the store cannot be read (health checks)."""
        self.sql.scalar("SELECT count(*) FROM rooms_live")

    # --- staff corrections ----------------------------------------------------------------------

    def add_adjustment(self, room: str, at: dt.datetime, user: str, old: int, new: int, reason: str) -> None:
        self.sql.run(
            'INSERT INTO adjustments (room, at, "user", from_value, to_value, reason) VALUES (?,?,?,?,?,?)',
            (room, format_ts(at), user, old, new, reason),
        )

    def adjustments(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.sql.rows("SELECT * FROM adjustments ORDER BY pk DESC LIMIT ?", (limit,))

    def last_adjustment(self) -> int:
        """The row id of the newest correction (0 if none)."""
        return self.sql.scalar("SELECT coalesce(max(pk), 0) FROM adjustments")

    def rooms_adjusted_since(self, pk: int) -> list[str]:
        return [r[0] for r in self.sql.tuples("SELECT DISTINCT room FROM adjustments WHERE pk > ?", (pk,))]

    def corrections(self, start: str, end: str, room: str | None = None) -> list[tuple[str, str, int]]:
        """(at, room, value) of the corrections made in [start, end), of one room or all."""
        if room is not None:
            query = "SELECT at, room, to_value FROM adjustments WHERE room=? AND at >= ? AND at < ?"
            return self.sql.tuples(query, (room, start, end))
        return self.sql.tuples(
            "SELECT at, room, to_value FROM adjustments WHERE at >= ? AND at < ?", (start, end)
        )

    # --- devices, dead letters, metrics ---------------------------------------------------------

    def upsert_device(self, device: str, fields: dict[str, Any]) -> None:
        fields = {
            **fields,
            "health": json.dumps(fields["health"]) if fields.get("health") is not None else None,
        }
        cols = ", ".join(fields)
        updates = ", ".join(f"{k}=excluded.{k}" for k in fields)
        self.sql.run(
            f"INSERT INTO devices (id, {cols}) VALUES (?, {marks(fields)}) ON CONFLICT (id) DO UPDATE SET {updates}",
            (device, *fields.values()),
        )

    def mark_seen(self, devices: list[str], last_seen: str) -> None:
        """Devices heard from (an event is a sign of life as good as a status): online, last seen now."""
        self.sql.many(
            "INSERT INTO devices (id, last_seen, state) VALUES (?, ?, 'online')"
            " ON CONFLICT (id) DO UPDATE SET last_seen=excluded.last_seen, state=excluded.state",
            [(device, last_seen) for device in devices],
        )

    def devices(self) -> list[dict[str, Any]]:
        rows = self.sql.rows("SELECT * FROM devices ORDER BY id")
        return [{**r, "health": json.loads(r["health"]) if r["health"] else None} for r in rows]

    def device_last_seq(self, device: str) -> int | None:
        return self.sql.scalar("SELECT last_seq FROM devices WHERE id=?", (device,))

    def dead_letter(self, topic: str, payload: bytes, reason: str, now: dt.datetime) -> None:
        excerpt = payload[:EXCERPT_BYTES].decode("utf-8", errors="replace")
        if not self.text_holds_nul:
            excerpt, reason = excerpt.replace("\x00", "\ufffd"), reason.replace("\x00", "\ufffd")
        self.sql.run(
            "INSERT INTO dead_letters (topic, excerpt, size, reason, received_at) VALUES (?,?,?,?,?)",
            (topic, excerpt, len(payload), reason, format_ts(now)),
        )

    def count_dead_letter(self, device: str, reason: str, stored: bool) -> None:
        column = "stored" if stored else "dropped"
        self.sql.run(
            f"INSERT INTO dead_letter_counts (device, reason, {column}) VALUES (?, ?, 1)"
            f" ON CONFLICT (device, reason) DO UPDATE SET {column} = dead_letter_counts.{column} + 1",
            (device, reason),
        )

    def prune_dead_letters(self, keep: int) -> int:
        """Delete the oldest dead letters beyond the newest `keep`; return how many went."""
        newest = self.sql.scalar("SELECT max(pk) FROM dead_letters")
        if newest is None or newest <= keep:
            return 0
        return self.sql.run("DELETE FROM dead_letters WHERE pk <= ?", (newest - keep,))

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.sql.rows("SELECT * FROM dead_letters ORDER BY pk DESC LIMIT ?", (limit,))

    def dead_letter_counts(self) -> list[dict[str, Any]]:
        """Per device and reason: dead letters stored and dropped (beyond the per-device rate), for metrics."""
        return self.sql.rows("SELECT * FROM dead_letter_counts ORDER BY device, reason")

    def bump(self, name: str, n: int = 1) -> None:
        self.bump_all({name: n})

    def bump_all(self, counts: dict[str, int]) -> None:
        """Add to several counters in one executemany."""
        self.sql.many(
            "INSERT INTO metrics VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = metrics.value + excluded.value",
            [(name, n) for name, n in counts.items() if n],
        )

    def metrics(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.sql.tuples("SELECT name, value FROM metrics")}

    # --- alerts ---------------------------------------------------------------------------------

    def add_alert(self, device: str, event_id: str, room: str | None, at: dt.datetime) -> None:
        self.sql.run(
            "INSERT INTO alerts (device, event_id, room, raised_at) VALUES (?,?,?,?)"
            " ON CONFLICT (device, event_id) DO NOTHING",
            (device, event_id, room, format_ts(at)),
        )

    def open_alert(self, kind: str, device: str | None = None) -> int | None:
        """The pk of the oldest open alert of this kind (and device), if any."""
        if device is None:
            return self.sql.scalar(
                "SELECT pk FROM alerts WHERE kind=? AND cleared_at IS NULL ORDER BY pk LIMIT 1", (kind,)
            )
        query = "SELECT pk FROM alerts WHERE kind=? AND device=? AND cleared_at IS NULL ORDER BY pk LIMIT 1"
        return self.sql.scalar(query, (kind, device))

    def repeat_alert(self, pk: int, at: str, message: str) -> None:
        self.sql.run(
            "UPDATE alerts SET calls = calls + 1, last_at=?, message=? WHERE pk=?", (at, message, pk)
        )

    def insert_alert(
        self, kind: str, device: str, event_id: str, room: str | None, at: str, message: str
    ) -> int:
        """A new open alert and its 'raised' notice (for the webhooks); returns its pk."""
        row = self.sql.one(
            "INSERT INTO alerts (device, event_id, room, raised_at, kind, message, last_at) VALUES (?,?,?,?,?,?,?)"
            " RETURNING pk",
            (device, event_id, room, at, kind, message, at),
        )
        self.sql.run("INSERT INTO alert_notices (alert, what, at) VALUES (?, 'raised', ?)", (row["pk"], at))
        return row["pk"]

    def close_alerts(
        self, at: str, by: str, pks: list[int] | None, kind: str | None, device: str | None
    ) -> list[int]:
        """Close the open alerts matching (None = any), each with a 'cleared' notice; returns their pks."""
        where, params = ["cleared_at IS NULL"], []
        if pks is not None:
            where.append(f"pk IN ({marks(pks)})")
            params += list(pks)
        if kind is not None:
            where.append("kind=?")
            params.append(kind)
        if device is not None:
            where.append("device=?")
            params.append(device)
        found = [
            r[0]
            for r in self.sql.tuples(f"SELECT pk FROM alerts WHERE {' AND '.join(where)} ORDER BY pk", params)
        ]
        for pk in found:
            self.sql.run("UPDATE alerts SET cleared_at=?, cleared_by=? WHERE pk=?", (at, by, pk))
            self.sql.run("INSERT INTO alert_notices (alert, what, at) VALUES (?, 'cleared', ?)", (pk, at))
        return found

    def clear_alert(self, pk: int, user: str, at: dt.datetime) -> bool:
        query = "UPDATE alerts SET cleared_at=?, cleared_by=? WHERE pk=? AND cleared_at IS NULL"
        return self.sql.run(query, (format_ts(at), user, pk)) == 1

    def open_alerts(self) -> list[dict[str, Any]]:
        return self.sql.rows("SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY pk")

    def open_alert_counts(self) -> list[tuple[str, int]]:
        """(kind, open alerts) for metrics."""
        return self.sql.tuples(
            "SELECT kind, count(*) FROM alerts WHERE cleared_at IS NULL GROUP BY kind ORDER BY kind"
        )

    def alert(self, pk: int) -> dict[str, Any] | None:
        return self.sql.one("SELECT * FROM alerts WHERE pk=?", (pk,))
