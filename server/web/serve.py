"""Run the web process on gevent's WSGI server: one greenlet per connection, so hundreds of dashboards and
screens can hold a live Server-Sent-Events stream each (thread-per-stream servers held 4 to 16).

gevent must monkey-patch the standard library before anything else imports `threading`, `socket`, `ssl`,
`queue` users (paho-mqtt, sqlite3 users, Flask). `footfall server --only web` therefore calls
`main_web(site)` from its entry point, before importing anything from `server`, and this module imports nothing
heavy at the top for that reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from footfall.server.store import Store
    from footfall.site import SiteConfig

from footfall import sdnotify
from footfall.errors import FootfallError

logger = logging.getLogger(__name__)


def main_web(site: SiteConfig, host: str | None = None, port: int | None = None) -> None:
    """Entry point of the web process: monkey-patch with gevent first, then import the app and serve."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()
    serve(site, host, port)


def serve(
    site: SiteConfig,
    host: str | None = None,
    port: int | None = None,
    *,
    store: Store | None = None,
    mqtt: bool = True,
) -> None:
    """Serve until SIGTERM/SIGINT. host/port default to `[server] listen`. `mqtt=False` runs without a broker."""
    import signal

    import gevent

    from footfall.server.web import create_app
    from footfall.server.web.httpserver import guarded_server
    from footfall.server.web.live import LiveHub, LocalHub
    from footfall.server.webhooks import Deliverer

    default_host, default_port = site.listen
    host = host or default_host
    port = default_port if port is None else port
    live = LiveHub(site).start() if mqtt else LocalHub()
    app = create_app(site, store, live)
    # Header, idle and send timeouts and a connection cap ([server] settings): half-open connections cannot
    # starve the process (server/web/httpserver.py).
    server = guarded_server(
        (host, port),
        app,
        site.server,
        log=logging.getLogger("server.web.access"),
        error_log=logging.getLogger("server.web.errors"),
    )

    def _stop(*_args) -> None:
        logger.info("stopping the web server")
        gevent.spawn(server.stop, timeout=3)

    gevent.signal_handler(signal.SIGTERM, _stop)
    gevent.signal_handler(signal.SIGINT, _stop)
    try:
        server.start()
    except OSError as exc:
        from footfall.server.process import busy_port_message

        live.stop()
        raise FootfallError(busy_port_message(host, port, exc)) from None
    logger.info("web server for site %s on http://%s:%d/", site.id, host, server.server_port)
    sdnotify.ready()
    gevent.spawn(_keep_watchdog_fed)
    gevent.spawn(_watch_ingest, site, app, live)
    deliverer = Deliverer(site, app.extensions["footfall"].store).start()  # ingest's may be the one stalled
    try:
        server.serve_forever()
    finally:
        deliverer.stop()
        live.stop()
        logger.info("web server stopped")


def _keep_watchdog_fed() -> None:
    """WATCHDOG=1 every 20 s from a greenlet: proves the gevent loop that serves requests still runs."""
    import gevent

    while True:
        sdnotify.watchdog()
        gevent.sleep(20)


def _watch_ingest(site: SiteConfig, app, live) -> None:
    """Raise `ingest_stalled` when ingest stops counting (server.monitor.IngestWatch); never ends on an error."""
    import gevent

    from footfall.clock import utcnow
    from footfall.server.alerting import alerts_payload
    from footfall.server.monitor import IngestWatch

    store = app.extensions["footfall"].store
    watch = IngestWatch(site, store, live, utcnow())
    while True:
        gevent.sleep(site.alerts.check_every_s)
        try:
            if watch.tick(utcnow()):
                live.broadcast("alerts", alerts_payload(store))  # this process's dashboards at once
                if getattr(live, "mqtt", False):
                    live.ask_ingest({"v": 1, "cmd": "republish-alerts"})
        except Exception:  # a locked or full store: try again at the next check
            logger.exception("ingest watch failed")
        finally:
            store.close()
