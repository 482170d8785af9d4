"""Ingest's heartbeat: a small file in the data folder that its worker rewrites every loop, read by the web's
`/healthz` and by the `footfall server` supervisor. Separate processes share the data folder, not memory.

The file has a fixed size and is rewritten in place (`pwrite` at offset 0), so it can still be written when the
disk is full: that is exactly when it has something to say.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from footfall.clock import format_ts, parse_ts, utcnow

logger = logging.getLogger(__name__)

FILE_NAME = "ingest.health"
SIZE = 1024
BEAT_EVERY_S = 2.0  # the worker loop wakes at least every second; the file is rewritten every 2 s
STALE_AFTER_S = 30.0  # no beat for this long: /healthz says the worker stalled (SIGSTOP, hang, dead)
EXIT_AFTER_S = 45.0  # ...and the ingest process (or the `footfall server` supervisor) ends it for a restart


def health_path(data_dir: str | Path, worker: int = 1) -> Path:
    """Ingest's heartbeat file; ingest worker k > 1 ([server] ingest_workers) has its own, `ingest-<k>.health`."""
    return Path(data_dir) / (FILE_NAME if worker == 1 else f"ingest-{worker}.health")


class IngestHealth:
    """What the ingest worker knows about itself: last beat, store and broker problems; written to the file."""

    def __init__(self, data_dir: str | Path, worker: int = 1):
        self.path = health_path(data_dir, worker)
        self.name = "ingest" if worker == 1 else f"ingest worker {worker}"
        self.events = 0  # new events stored by this process since it started
        self.workers_problems: list[str] = []  # worker 1: what it knows of the others (server.process)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.store_problem: str | None = None
        self.mqtt_connected = False
        self.last_beat = time.monotonic()
        self._written = 0.0
        self._fd: int | None = None

    def beat(self, force: bool = False) -> None:
        """Called by the worker on every loop: proves it runs; rewrites the file every BEAT_EVERY_S."""
        now = time.monotonic()
        self.last_beat = now
        if force or now - self._written >= BEAT_EVERY_S:
            self._written = now
            self._write()

    def set_store_problem(self, problem: str | None) -> None:
        changed = problem != self.store_problem
        self.store_problem = problem
        if changed:
            self.beat(force=True)

    def set_mqtt(self, connected: bool) -> None:
        """From the MQTT thread: a change is written at once (the worker's beat may be up to 2 s away)."""
        changed = connected != self.mqtt_connected
        self.mqtt_connected = connected
        if changed:
            self._write()

    def stalled_for(self) -> float:
        return time.monotonic() - self.last_beat

    def snapshot(self) -> dict[str, Any]:
        problems = []
        if self.store_problem:
            problems.append(f"store: {self.store_problem}")
        if not self.mqtt_connected:
            problems.append(f"{self.name}: not connected to the broker")
        problems += self.workers_problems
        return {"pid": os.getpid(), "beat": format_ts(utcnow()), "events": self.events, "problems": problems}

    def _write(self) -> None:
        data = json.dumps(self.snapshot(), ensure_ascii=False).encode()[: SIZE - 1]
        data = data.ljust(SIZE - 1) + b"\n"
        with self._lock:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                os.pwrite(self._fd, data, 0)
            except OSError as exc:  # a full disk before the file ever had its size; say so once per beat
                logger.warning("cannot write the heartbeat %s: %s", self.path, exc)
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_heartbeat(data_dir: str | Path, worker: int = 1) -> dict[str, Any] | None:
    """The last heartbeat, or None when there is none (or it cannot be read)."""
    try:
        raw = health_path(data_dir, worker).read_bytes()
        beat = json.loads(raw.decode("utf-8").strip() or "null")
        return beat if isinstance(beat, dict) and isinstance(beat.get("beat"), str) else None
    except (OSError, ValueError):
        return None


def heartbeat_age(beat: dict[str, Any], now: dt.datetime | None = None) -> float:
    try:
        return ((now or utcnow()) - parse_ts(beat["beat"])).total_seconds()
    except (ValueError, OverflowError):
        return float("inf")


def ingest_problems(data_dir: str | Path, now: dt.datetime | None = None) -> list[str]:
    """Why ingest is not healthy, from its heartbeat file: not running, stalled, or its own reported problems."""
    beat = read_heartbeat(data_dir)
    if beat is None:
        return [f"ingest: no heartbeat in {health_path(data_dir)} (not running?)"]
    age = heartbeat_age(beat, now)
    if age > STALE_AFTER_S:
        return [f"ingest: stalled or stopped (no heartbeat for {age:.0f} s)"]
    return [str(p) for p in beat.get("problems") or []]
