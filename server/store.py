"""The store: a small interface over the database, with SQLite (sqlite-utils) as the embedded default.

Ingest writes in batches through `transaction()`; the web process reads and makes staff changes. Both open the
same file (WAL lets readers run beside the writer). A PostgreSQL backend implements the same methods.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from footfall.clock import format_ts, parse_ts
from footfall.errors import StoreError
from footfall.server.migrations import migrations
from footfall.server.occupancy import RoomCounts

EXCERPT_BYTES = 256
EVENT_COLUMNS = (
    "device", "id", "seq", "type", "ts", "device_ts", "received_at", "day", "clock_flag", "door", "direction",
    "count", "purpose", "adults", "children", "activity", "member", "room",
)  # fmt: skip
INSERT_EVENT = f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join(':' + c for c in EVENT_COLUMNS)})"


# SQLite errors that say the store cannot take writes now (full disk, I/O, read-only, locked, damaged), as opposed
# to a problem with one message: ingest then stops acknowledging and retries rather than dead-lettering.
UNAVAILABLE = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN",
               "SQLITE_CORRUPT", "SQLITE_NOTADB")  # fmt: skip


def store_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and (getattr(exc, "sqlite_errorname", "") or "").startswith(
        UNAVAILABLE
    )


def _counts_from_row(row: sqlite3.Row) -> RoomCounts:
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


class Tx:
    """Writes inside one transaction (ingest batch or staff action)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def insert_event(self, row: dict[str, Any]) -> bool:
        """Insert a raw event; False when (device, id) is already stored (a duplicate delivery)."""
        cur = self.conn.execute(INSERT_EVENT, row)
        return cur.rowcount == 1

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        """Insert new events (ingest has already dropped repeats; OR IGNORE stays as the safety net)."""
        self.conn.executemany(INSERT_EVENT, rows)

    def stored_event_keys(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (device, id) pairs are already stored: one query per device and 500 ids."""
        ids_by_device: dict[str, list[str]] = {}
        for device, event_id in keys:
            ids_by_device.setdefault(device, []).append(event_id)
        found: set[tuple[str, str]] = set()
        for device, ids in ids_by_device.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(
                    f"SELECT id FROM events WHERE device=? AND id IN ({marks})", (device, *chunk)
                )
                found.update((device, r[0]) for r in rows)
        return found

    def room_counts(self, room: str) -> RoomCounts | None:
        row = self.conn.execute("SELECT * FROM rooms_live WHERE room=?", (room,)).fetchone()
        return _counts_from_row(row) if row else None

    def put_room_counts(self, room: str, c: RoomCounts, now: dt.datetime) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO rooms_live VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                room,
                c.day.isoformat(),
                c.occupancy,
                c.raw_net,
                c.corrected,
                c.entries,
                c.exits,
                c.peak,
                format_ts(c.peak_at) if c.peak_at else None,
                format_ts(now),
            ),
        )

    def dead_letter(self, topic: str, payload: bytes, reason: str, now: dt.datetime) -> None:
        excerpt = payload[:EXCERPT_BYTES].decode("utf-8", errors="replace")
        self.conn.execute(
            "INSERT INTO dead_letters (topic, excerpt, size, reason, received_at) VALUES (?,?,?,?,?)",
            (topic, excerpt, len(payload), reason, format_ts(now)),
        )

    def count_dead_letter(self, device: str, reason: str, stored: bool) -> None:
        column = "stored" if stored else "dropped"
        self.conn.execute(
            f"INSERT INTO dead_letter_counts (device, reason, {column}) VALUES (?, ?, 1)"
            f" ON CONFLICT(device, reason) DO UPDATE SET {column} = {column} + 1",
            (device, reason),
        )

    def prune_dead_letters(self, keep: int) -> int:
        """Delete the oldest dead letters beyond the newest `keep`; return how many went."""
        newest = self.conn.execute("SELECT max(pk) FROM dead_letters").fetchone()[0]
        if newest is None or newest <= keep:
            return 0
        return self.conn.execute("DELETE FROM dead_letters WHERE pk <= ?", (newest - keep,)).rowcount

    def upsert_device(self, device: str, fields: dict[str, Any]) -> None:
        fields = {
            **fields,
            "health": json.dumps(fields["health"]) if fields.get("health") is not None else None,
        }
        cols = ", ".join(fields)
        marks = ", ".join(f":{k}" for k in fields)
        updates = ", ".join(f"{k}=excluded.{k}" for k in fields)
        self.conn.execute(
            f"INSERT INTO devices (id, {cols}) VALUES (:id, {marks}) ON CONFLICT(id) DO UPDATE SET {updates}",
            {"id": device, **fields},
        )

    def bump(self, name: str, n: int = 1) -> None:
        if n:
            self.conn.execute(
                "INSERT INTO metrics VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, n),
            )

    def add_alert(self, device: str, event_id: str, room: str | None, at: dt.datetime) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO alerts (device, event_id, room, raised_at) VALUES (?,?,?,?)",
            (device, event_id, room, format_ts(at)),
        )

    def clear_alert(self, pk: int, user: str, at: dt.datetime) -> bool:
        cur = self.conn.execute(
            "UPDATE alerts SET cleared_at=?, cleared_by=? WHERE pk=? AND cleared_at IS NULL",
            (format_ts(at), user, pk),
        )
        return cur.rowcount == 1

    def add_adjustment(self, room: str, at: dt.datetime, user: str, old: int, new: int, reason: str) -> None:
        self.conn.execute(
            "INSERT INTO adjustments (room, at, user, from_value, to_value, reason) VALUES (?,?,?,?,?,?)",
            (room, format_ts(at), user, old, new, reason),
        )


class SqliteStore:
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        if self.path != ":memory:" and Path(self.path).exists() and Path(self.path).stat().st_size == 0:
            raise StoreError(
                f"{self.path}: the store file is empty (0 bytes); restore it from a backup, or delete it to start"
                " a new store"
            )
        try:
            conn = self._connect()
            migrations.apply(Database(conn))
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a usable Footfall store ({exc}); `footfall store check` tells more"
            ) from None
        self._local.conn = conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        conn = self.conn
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn)
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full) may have ended the transaction already.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # --- reads ----------------------------------------------------------------------------------

    def rooms_live(self) -> dict[str, RoomCounts]:
        return {row["room"]: _counts_from_row(row) for row in self.conn.execute("SELECT * FROM rooms_live")}

    def devices(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM devices ORDER BY id").fetchall()
        return [{**dict(r), "health": json.loads(r["health"]) if r["health"] else None} for r in rows]

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM dead_letters ORDER BY pk DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    def count(self, table: str, where: str = "1=1", params: tuple = ()) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]

    def dead_letter_counts(self) -> list[dict[str, Any]]:
        """Per device and reason: dead letters stored and dropped (beyond the per-device rate), for metrics."""
        rows = self.conn.execute("SELECT * FROM dead_letter_counts ORDER BY device, reason").fetchall()
        return [dict(r) for r in rows]

    def metrics(self) -> dict[str, int]:
        return {r["name"]: r["value"] for r in self.conn.execute("SELECT * FROM metrics")}

    def day_crossings(self, day: dt.date) -> list[tuple[dt.datetime, str, str, int]]:
        rows = self.conn.execute(
            "SELECT ts, device, direction, count FROM events WHERE day=? AND type='crossing'",
            (day.isoformat(),),
        )
        return [(parse_ts(r[0]), r[1], r[2], r[3]) for r in rows]

    def day_checkins(self, day: dt.date) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT ts, device, purpose, adults, children, activity, member, room FROM events"
            " WHERE day=? AND type='checkin'",
            (day.isoformat(),),
        )
        return [dict(r) for r in rows]

    def open_alerts(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY pk").fetchall()
        return [dict(r) for r in rows]

    def alert(self, pk: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM alerts WHERE pk=?", (pk,)).fetchone()
        return dict(row) if row else None

    def adjustments(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM adjustments ORDER BY pk DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    # --- accounts -------------------------------------------------------------------------------

    def get_user(self, username: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM users WHERE username=?", (username,)).fetchone()
        return dict(row) if row else None

    def put_user(self, username: str, password_hash: str, role: str, now: dt.datetime) -> None:
        with self.transaction() as tx:
            tx.conn.execute(
                "INSERT INTO users (username, password_hash, role, created_at) VALUES (?,?,?,?)"
                " ON CONFLICT(username) DO UPDATE SET password_hash=excluded.password_hash, role=excluded.role,"
                " session_version=session_version+1",  # a new password or role ends the user's sessions
                (username, password_hash, role, format_ts(now)),
            )

    def end_sessions(self, username: str) -> None:
        """Every session cookie of `username` stops working (web.auth checks the version on each request)."""
        with self.transaction() as tx:
            tx.conn.execute(
                "UPDATE users SET session_version=session_version+1 WHERE username=?", (username,)
            )

    def add_token(self, token_hash: str, role: str, label: str, now: dt.datetime) -> None:
        with self.transaction() as tx:
            tx.conn.execute("INSERT INTO tokens VALUES (?,?,?,?)", (token_hash, role, label, format_ts(now)))

    def token_role(self, token_hash: str) -> tuple[str, str] | None:
        row = self.conn.execute("SELECT role, label FROM tokens WHERE token_hash=?", (token_hash,)).fetchone()
        return (row["role"], row["label"]) if row else None
