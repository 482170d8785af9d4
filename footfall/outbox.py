"""The durable edge outbox: an event is written (fsync'd) before it is published and removed only after the
broker's PUBACK. SQLite with synchronous=FULL, WAL.

Full policy: when `max_events` are waiting, a new event is refused (OutboxFull) rather than an old one dropped;
the refusal is counted durably (`refused`) and reported in the device status, so a loss is never silent.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from footfall.errors import FootfallError

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


@dataclass(frozen=True)
class Pending:
    seq: int
    id: str
    topic: str
    payload: bytes


class Outbox:
    def __init__(self, path: str | Path, max_events: int = 100_000):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._count = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone()
        self._last_seq = row[0] if row else 0

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

    def _counter(self, name: str) -> int:
        with self._lock:
            return self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]

    def append(self, build: Callable[[int], tuple[str, str, bytes]]) -> int:
        """Allocate the next seq, build (id, topic, payload) for it, store durably; return the seq."""
        with self._lock:
            if self._count >= self.max_events:
                self._db.execute("UPDATE counters SET value = value + 1 WHERE name='refused'")
                raise OutboxFull(f"outbox holds {self._count} unsent events (max_events)")
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
