"""The durable edge outbox: an event is written (fsync'd) before it is published and removed only when the server
confirms it has committed it (an ack on the device's `ack` topic), never on the broker's PUBACK alone: a broker
killed before it saves would otherwise take the events with it. SQLite with synchronous=FULL, WAL.

Full policy: when `max_events` are waiting, a new event is refused (OutboxFull) rather than an old one dropped;
the refusal is counted durably (`refused`) and reported in the device status, so a loss is never silent.

A damaged file is an `OutboxDamaged` error naming it (one line, no traceback); a file emptied to 0 bytes is
reported once and started afresh (its events are gone: the server sees the device's `seq` restart and reports the
lost range).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from footfall.clock import parse_ts
from footfall.errors import FootfallError

logger = logging.getLogger(__name__)

# AUTOINCREMENT keeps the highest seq ever used in sqlite_sequence, so seq survives restarts and an empty outbox
# without a counter row to update on every event (one INSERT, one fsync per event). Seqs start at 1.
SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                                   topic TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('refused', 0);
"""


class OutboxFull(FootfallError):
    """The outbox holds `max_events` unsent events; the new one was refused and counted."""


class OutboxDamaged(FootfallError):
    """The outbox file cannot be read as an outbox (garbled, half-truncated, not a database)."""


class OutboxUnwritable(FootfallError):
    """The outbox's folder or file cannot be written: nothing could be stored, so the device must not run."""


@dataclass(frozen=True)
class Pending:
    seq: int
    id: str
    topic: str
    payload: bytes


class Outbox:
    def __init__(self, path: str | Path, max_events: int = 100_000):
        self.path = str(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        self.emptied = _was_emptied(Path(path))
        folder = Path(path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxUnwritable(f"cannot create the data folder {folder}: {exc.strerror}") from None
        if not os.access(folder, os.W_OK):
            raise OutboxUnwritable(
                f"the data folder {folder} is not writable by this user: the outbox needs it"
            )
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # quick_check reads every page: a half-truncated or garbled file fails here, not mid-count.
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            self._db.executescript(SCHEMA)
            self._count = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone()
        except sqlite3.OperationalError as exc:
            raise OutboxUnwritable(
                f"cannot open the outbox {self.path} for writing ({exc}): is the data folder {folder} writable?"
            ) from None
        except sqlite3.DatabaseError as exc:
            raise OutboxDamaged(
                f"outbox {self.path} is damaged ({exc}): move it aside to start a new one"
                " (its unsent events are lost; the server will report the missing seq range)"
            ) from None
        except OSError as exc:
            raise OutboxDamaged(f"outbox {self.path} cannot be opened: {exc}") from None
        self._last_seq = row[0] if row else 0
        if self.emptied:
            logger.error(
                "outbox %s was empty (0 bytes): the events it held are lost; starting a new outbox at seq 1"
                " (the server will report the missing range)",
                self.path,
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def queue(self) -> int:
        return self._count

    @property
    def last_seq(self) -> int:
        """The seq of the newest event ever stored (0 before the first)."""
        return self._last_seq

    @property
    def refused(self) -> int:
        return self._counter("refused")

    @property
    def full(self) -> bool:
        return self._count >= self.max_events

    def _counter(self, name: str) -> int:
        with self._lock:
            return self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]

    def append(self, build: Callable[[int], tuple[str, str, bytes]]) -> int:
        """Allocate the next seq, build (id, topic, payload) for it, store durably; return the seq."""
        with self._lock:
            if self._count >= self.max_events:
                self._db.execute("UPDATE counters SET value = value + 1 WHERE name='refused'")
                raise OutboxFull(f"outbox holds {self._count} unconfirmed events (max_events)")
            seq = self._last_seq + 1
            event_id, topic, payload = build(seq)
            self._db.execute("INSERT INTO outbox VALUES (?,?,?,?)", (seq, event_id, topic, payload))
            self._last_seq = seq
            self._count += 1
            return seq

    def pending(self, after_seq: int = 0, limit: int = 1000) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [Pending(*row) for row in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        seqs = list(seqs)
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN")
            cur = self._db.executemany("DELETE FROM outbox WHERE seq=?", [(s,) for s in seqs])
            self._db.execute("COMMIT")
            self._count -= cur.rowcount

    def confirm(self, ranges: Iterable[tuple[int, int, str]]) -> int:
        """Delete the events the server confirmed: each range (first seq, last seq, id of the last) is applied only
        if this outbox holds that last seq with that id, so an ack meant for another outbox (one that was reset, or a
        second device with the same id) deletes nothing. Returns how many events were deleted."""
        deleted = 0
        with self._lock:
            self._db.execute("BEGIN")
            for first, last, last_id in ranges:
                row = self._db.execute("SELECT id FROM outbox WHERE seq=?", (last,)).fetchone()
                if row is None or row[0] != last_id:
                    continue
                cur = self._db.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last))
                deleted += cur.rowcount
            self._db.execute("COMMIT")
            self._count -= deleted
        return deleted

    def oldest(self) -> Pending | None:
        """The oldest unconfirmed event."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, id, topic, payload FROM outbox ORDER BY seq LIMIT 1"
            ).fetchone()
        return Pending(*row) if row else None

    def oldest_ts(self):
        """When the oldest unconfirmed event happened (its `ts`), or None when nothing waits."""
        oldest = self.oldest()
        if oldest is None:
            return None
        try:
            return parse_ts(json.loads(oldest.payload)["ts"])
        except (ValueError, KeyError, TypeError):
            return None


def _was_emptied(path: Path) -> bool:
    """A 0-byte file where an outbox was: a new outbox is created, never an empty file."""
    try:
        return path.stat().st_size == 0
    except OSError:
        return False
