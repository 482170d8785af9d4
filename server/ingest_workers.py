"""Ingest workers 2..N of a site ([server] ingest_workers), started and watched by ingest worker 1.

Each is a child process (`footfall server --only ingest-worker --worker K`) that dies with worker 1. One that
dies, or whose heartbeat stops, is restarted (at most RESTARTS_PER_MINUTE times a minute, then at the next
minute): its unacknowledged share of the events waits in its persistent broker session meanwhile. Every problem of
a worker (down, restarted lately, its own heartbeat's problems) is listed in worker 1's heartbeat, so it shows in
the web's /healthz, /metrics and the staff's `ingest_stalled` alert like ingest's own.
"""

from __future__ import annotations

import logging
import signal
import sys
import time

from footfall.server.health import read_heartbeat
from footfall.server.process import RESTARTS_PER_MINUTE, Child
from footfall.signals import stop_children
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)

RECENT_S = 60.0  # a worker restarted this recently is still reported


class IngestWorkers:
    def __init__(self, site: SiteConfig):
        self.site = site
        self.children = {
            k: Child(
                f"ingest worker {k}",
                [
                    sys.executable,
                    "-m",
                    "footfall.cli",
                    "server",
                    "-c",
                    site.path,
                    "--only",
                    "ingest-worker",
                    "--worker",
                    str(k),
                ],
                str(site.data_dir),
                worker=k,
            )  # fmt: skip
            for k in range(2, site.server.ingest_workers + 1)
        }

    def start(self) -> IngestWorkers:
        for child in self.children.values():
            child.start()
        return self

    def check(self) -> list[str]:
        """Restart the workers that died or stalled; return what is wrong with any of them, for the heartbeat."""
        problems = []
        now = time.monotonic()
        for k, child in self.children.items():
            assert child.proc is not None
            child.restarts = [t for t in child.restarts if now - t < RECENT_S]
            returncode = child.proc.poll()
            stalled = child.stalled() if returncode is None else None
            if stalled:
                logger.error("%s: %s; killing it", child.part, stalled)
                child.proc.kill()
                child.proc.wait()
                returncode = -signal.SIGKILL
            if returncode is not None:
                if len(child.restarts) < RESTARTS_PER_MINUTE:
                    logger.error("%s ended (%s); restarting it", child.part, returncode)
                    child.restarts.append(now)
                    child.start()
                else:
                    problems.append(f"{child.part}: not running (ended {returncode}; restarted too often)")
                    continue
            if child.restarts:
                problems.append(f"{child.part}: restarted {len(child.restarts)} time(s) in the last minute")
            elif (beat := read_heartbeat(self.site.data_dir, k)) is not None:
                problems += [str(p) for p in beat.get("problems") or []]
        return problems

    def stop(self) -> None:
        stop_children([c.proc for c in self.children.values() if c.proc is not None])
