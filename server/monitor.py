"""Conditions that become alerts, checked every `[alerts] check_every_s`: raised while true, cleared by the server
when they end (`server.alerting`).

- `device_offline`: a device of the site file last heard from more than `device_offline_s` ago (or never, since
  ingest started). Judged by ingest only while its own broker link is up, and only `min(90 s, device_offline_s)`
  after it (re)connected: a server that cannot hear its devices knows nothing about them, and after a reconnect
  their retained status needs a moment to arrive.
- `disk_low`: less than `disk_free_min_mb` free where the store lives (checked by ingest, the writer).
- `ingest_stalled`: checked by the web process: ingest's retained server status has said `offline` (its Last Will:
  dead, frozen past the keep-alive, or cut off) for more than `ingest_stall_s`, or the web itself cannot reach
  the broker for that long (then nothing is counted either).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from typing import Any

from footfall.clock import parse_ts
from footfall.server.alerting import SITE_WIDE, clear_alert, raise_alert

logger = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(seconds=150)  # as the dashboard: two missed 60 s heartbeats plus slack
RECONNECT_GRACE_S = 90
MB = 1024 * 1024


class Monitor:
    """One per process. `check(now)` returns True when it opened or cleared an alert (republish the list)."""

    def __init__(self, site: Any, store: Any, started: dt.datetime):
        self.site = site
        self.store = store
        self.settings = site.alerts
        self.started = started
        self._next = started
        self._disk_low = False

    def due(self, now: dt.datetime) -> bool:
        if now < self._next:
            return False
        self._next = now + dt.timedelta(seconds=self.settings.check_every_s)
        return True

    def _open(self, kind: str) -> bool:
        return self.store.open_alert(kind) is not None

    # --- ingest -------------------------------------------------------------------------------

    def check_devices(self, now: dt.datetime, link_up_since: dt.datetime | None) -> bool:
        if link_up_since is None:
            return False
        grace = min(RECONNECT_GRACE_S, self.settings.device_offline_s)
        if (now - link_up_since).total_seconds() < grace:
            return False
        limit = dt.timedelta(seconds=self.settings.device_offline_s)
        rows = {r["id"]: r for r in self.store.devices()}
        changed = False
        with self.store.transaction() as tx:
            for device in self.site.devices:
                row = rows.get(device.id)
                seen = parse_ts(row["last_seen"]) if row and row.get("last_seen") else None
                online = (
                    bool(row)
                    and row.get("state") == "online"
                    and seen is not None
                    and now - seen <= STALE_AFTER
                )
                if online:
                    changed |= bool(clear_alert(tx, "device_offline", device.id, now))
                    continue
                since = seen or max(self.started, link_up_since)
                if now - since > limit:
                    minutes = int((now - since).total_seconds() // 60)
                    text = f"no word for {minutes} min" if seen else f"never heard from since {minutes} min"
                    pk, opened = raise_alert(tx, "device_offline", device.id, text, now, room=device.room)
                    if opened:
                        logger.warning("alert %d: device %s offline (%s)", pk, device.id, text)
                    changed |= opened
        return changed

    def check_disk(self, now: dt.datetime, usage: Callable[[str], Any] = shutil.disk_usage) -> bool:
        try:
            free = usage(str(self.site.data_dir)).free
        except OSError as exc:
            logger.warning("cannot read the free space of %s: %s", self.site.data_dir, exc)
            return False
        minimum = self.settings.disk_free_min_mb * MB
        # 10 % hysteresis, so a disk hovering at the line does not raise and clear every check.
        low = free < minimum if not self._disk_low else free < minimum * 1.1
        if low == self._disk_low:
            return False
        self._disk_low = low
        with self.store.transaction() as tx:
            if low:
                text = f"{free // MB} MB free in {self.site.data_dir} (alert below {minimum // MB} MB)"
                _, opened = raise_alert(tx, "disk_low", SITE_WIDE, text, now)
                logger.warning("disk nearly full: %s", text)
                return opened
            return bool(clear_alert(tx, "disk_low", SITE_WIDE, now))

    # --- web ----------------------------------------------------------------------------------

    def check_ingest(self, now: dt.datetime, problem_since: dt.datetime | None, why: str) -> bool:
        """problem_since: when ingest was last seen going offline (or the web lost the broker); None if fine."""
        if problem_since is None and not self._open("ingest_stalled"):
            return False
        with self.store.transaction() as tx:
            if problem_since is None:
                return bool(clear_alert(tx, "ingest_stalled", SITE_WIDE, now))
            if (now - problem_since).total_seconds() <= self.settings.ingest_stall_s:
                return False
            pk, opened = raise_alert(tx, "ingest_stalled", SITE_WIDE, why, now)
            if opened:
                logger.error("alert %d: ingest stalled (%s)", pk, why)
            return opened


class IngestWatch:
    """The web process's watch on ingest: its heartbeat file and its retained server status, and the web's own
    broker link. `tick(now)` returns True when the `ingest_stalled` alert opened or cleared."""

    def __init__(self, site: Any, store: Any, live: Any, started: dt.datetime):
        self.monitor = Monitor(site, store, started)
        self.site = site
        self.live = live
        self._since: dt.datetime | None = None

    def problem(self) -> str:
        from footfall.server.health import ingest_problems

        problems = ingest_problems(self.site.data_dir)
        since, why = self.live.ingest_problem() if hasattr(self.live, "ingest_problem") else (None, "")
        if since is not None:
            problems.append(why)
        return "; ".join(problems)

    def tick(self, now: dt.datetime) -> bool:
        why = self.problem()
        if not why:
            self._since = None
        elif self._since is None:
            self._since = now
        return self.monitor.check_ingest(now, self._since, why)
