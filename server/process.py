"""Server processes: ingest and web run as separate processes sharing the store and the bus, not memory."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

from footfall import sdnotify
from footfall.signals import stop_children, wait_for_signal
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)


def run_ingest(site: SiteConfig) -> None:
    from footfall.server.ingest import IngestService
    from footfall.server.store import SqliteStore

    store = SqliteStore(site.db_path)
    service = IngestService(site, store).start()
    sdnotify.ready()
    logger.info("ingest running for site %s (store %s)", site.id, site.db_path)
    try:
        wait_for_signal()
    finally:
        service.stop()


def run_both(config_path: str, extra_args: list[str] | None = None) -> int:
    """Run ingest and web as two child processes; stop both when either ends or on a signal."""
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "footfall.cli",
                "server",
                "-c",
                config_path,
                "--only",
                part,
                *(extra_args or []),
            ]
        )
        for part in ("ingest", "web")
    ]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    code = 0
    while not stop.is_set():
        for child in children:
            if child.poll() is not None:
                logger.error("server part exited with %s; stopping", child.returncode)
                code = child.returncode or 1
                stop.set()
        stop.wait(0.5)
    stop_children(children)
    return code
