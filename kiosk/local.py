"""What the kiosk keeps on its own disk: the last schedule (offline cache), the staff's language choice, and the
day's (member, activity) check-ins for the duplicate check, stored as hashes and purged after the day."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from footfall.errors import ValidationError
from footfall.kiosk.schedule import parse_room_state, parse_schedule

logger = logging.getLogger(__name__)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _connect_cache(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, day TEXT NOT NULL, at TEXT NOT NULL)"
        )
        (verdict,) = db.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {verdict}")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


class LocalState:
    """Thread-safe: the MQTT feed writes schedule and rooms, Flask request threads read them."""

    def __init__(self, data_dir: str | Path):
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.schedule: dict[str, Any] | None = None
        self.rooms: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, Any] = {}
        self._schedule_path = self.dir / "schedule.json"
        self._settings_path = self.dir / "settings.json"
        self._load()
        self._db_path = self.dir / "kiosk.db"
        self._db = self._open_cache()

    def _open_cache(self) -> sqlite3.Connection:
        """kiosk.db is only a cache (today's duplicate check): a damaged one is replaced by an empty one."""
        try:
            return _connect_cache(self._db_path)
        except sqlite3.DatabaseError as exc:
            return self._fresh_cache(exc)

    def _fresh_cache(self, exc: Exception) -> sqlite3.Connection:
        logger.warning(
            "duplicate-check cache %s is damaged (%s): starting an empty one "
            "(a member may check in twice to an activity today)",
            self._db_path,
            exc,
        )
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self._db_path}{suffix}").unlink(missing_ok=True)
        return _connect_cache(self._db_path)

    def _rebuild_cache(self, exc: Exception) -> None:
        """The cache broke while running: close it and start an empty one."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = self._fresh_cache(exc)

    def _load(self) -> None:
        if self._schedule_path.exists():
            try:
                self.schedule = parse_schedule(self._schedule_path.read_bytes())
            except (OSError, ValidationError) as exc:
                logger.warning("ignoring cached schedule %s: %s", self._schedule_path, exc)
        if self._settings_path.exists():
            try:
                loaded = json.loads(self._settings_path.read_text())
                self.settings = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError) as exc:
                logger.warning("ignoring settings %s: %s", self._settings_path, exc)

    def close(self) -> None:
        self._db.close()

    # --- schedule and rooms (from the MQTT feed) --------------------------------------------------

    def set_schedule(self, payload: bytes) -> bool:
        """Take a new retained schedule; keep the old one if it is invalid. Returns True when taken."""
        if not payload:
            return False  # a cleared retained message: keep the cache
        try:
            schedule = parse_schedule(payload)
        except ValidationError as exc:
            logger.warning("ignoring schedule: %s", exc)
            return False
        with self._lock:
            self.schedule = schedule
            _write_atomic(self._schedule_path, json.dumps(schedule, ensure_ascii=False).encode())
        logger.info("schedule for %s: %d items", schedule["date"], len(schedule["items"]))
        return True

    def set_room(self, room: str, payload: bytes) -> None:
        state = parse_room_state(payload)
        with self._lock:
            if state is None or state["room"] != room:
                self.rooms.pop(room, None)
            else:
                self.rooms[room] = state

    def room_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self.rooms.values(), key=lambda r: r["room"])

    # --- settings ---------------------------------------------------------------------------------

    def set_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self.settings[key] = value
            _write_atomic(self._settings_path, json.dumps(self.settings).encode())

    # --- duplicate check --------------------------------------------------------------------------

    @staticmethod
    def _key(day: dt.date, member: str, activity: str) -> str:
        return hashlib.sha256(f"{day.isoformat()}\x00{activity}\x00{member}".encode()).hexdigest()

    def already(self, day: dt.date, member: str, activity: str) -> str | None:
        """Local "HH:MM" of this member's earlier check-in to this activity today, or None."""
        try:
            row = self._db.execute(
                "SELECT at FROM seen WHERE key=?", (self._key(day, member, activity),)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self._rebuild_cache(exc)
            return None
        return row[0] if row else None

    def remember(self, day: dt.date, member: str, activity: str, hhmm: str) -> None:
        row = (self._key(day, member, activity), day.isoformat(), hhmm)
        for attempt in range(2):
            try:
                with self._lock:
                    self._db.execute("INSERT OR IGNORE INTO seen (key, day, at) VALUES (?, ?, ?)", row)
                return
            except sqlite3.DatabaseError as exc:
                if attempt:
                    raise
                self._rebuild_cache(exc)

    def purge(self, today: dt.date) -> int:
        """Forget earlier days (the duplicate check needs only today)."""
        try:
            with self._lock:
                return self._db.execute("DELETE FROM seen WHERE day < ?", (today.isoformat(),)).rowcount
        except sqlite3.DatabaseError as exc:
            self._rebuild_cache(exc)
            return 0
