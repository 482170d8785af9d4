"""`footfall kiosk -c kiosk.toml`: the edge runtime, the schedule/room-state feed and the UI server, together."""

from __future__ import annotations

import logging
import os
import threading

from werkzeug.serving import make_server

from footfall import sdnotify
from footfall.errors import ConfigError, FootfallError
from footfall.kiosk.app import create_app
from footfall.kiosk.config import KioskConfig, load_kiosk_config, refuse_example_pin
from footfall.kiosk.feed import Feed
from footfall.signals import wait_for_signal

logger = logging.getLogger(__name__)


class KioskService:
    """Everything `run` starts, startable in-process (the benchmark and tests use it)."""

    def __init__(self, config: KioskConfig, port: int | None = None, test_config: dict | None = None):
        self.config = config
        self.app = create_app(config, test_config=test_config)
        self.kiosk = self.app.extensions["kiosk"]
        self.feed = Feed(config, self.kiosk.local)
        host, listen_port = config.listen
        self.server = make_server(host, listen_port if port is None else port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="kiosk-http", daemon=True)
        self.stopped = False

    @property
    def url(self) -> str:
        return f"http://{self.config.listen[0]}:{self.server.server_port}/"

    def start(self) -> KioskService:
        day, _ = self.kiosk.today()
        self.kiosk.local.purge(day)
        self.kiosk.runtime.start()
        self.feed.start()
        self.thread.start()
        logger.info("kiosk %s serving %s", self.config.device.id, self.url)
        return self

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.server.shutdown()
        self.thread.join(5)
        self.feed.stop()
        self.kiosk.runtime.stop()
        self.kiosk.local.close()


def run(config_path: str | os.PathLike) -> int:
    # The UI polls /api/state: keep werkzeug's per-request lines out of the journal.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        config = load_kiosk_config(config_path)
        refuse_example_pin(config)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return 2
    try:
        service = KioskService(config).start()
    except FootfallError as exc:  # a damaged outbox (OutboxDamaged): one line naming the file
        logger.error("%s", exc)
        return 1
    except OSError as exc:
        logger.error("cannot listen on %s: %s", config.kiosk.listen, exc)
        return 1
    sdnotify.ready()
    try:
        wait_for_signal()
    finally:
        service.stop()
    return 0
