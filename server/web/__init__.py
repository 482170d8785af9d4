"""The web process: staff dashboard, lobby screen and the HTTP API (flaskr style: one blueprint per module).

`create_app(site, store, live)` builds the Flask app; `server.web.serve.main_web(site)` runs it on gevent's
WSGI server, which holds hundreds of live Server-Sent-Event streams in one process.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from footfall.clock import utcnow
from footfall.server.store import Store, open_store
from footfall.server.web import (
    alerts,
    api,
    audit_pages,
    auth,
    dashboard,
    i18n,
    metrics,
    openapi,
    reports,
    schedule_page,
    security,
)
from footfall.server.web.context import WebContext, web
from footfall.server.web.live import LocalHub
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # server/

# Every blueprint of the web, registered here and only here (tests/test_web_imports.py checks).
BLUEPRINTS = (
    auth.bp,
    api.bp,
    dashboard.bp,
    alerts.bp,
    reports.bp,
    schedule_page.bp,
    audit_pages.bp,
    openapi.bp,
)
__all__ = ["BLUEPRINTS", "WebContext", "create_app", "persisted_secret_key", "web"]


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON, but a body nested past Python's recursion limit is a ValueError (a 400), not a 500."""

    ensure_ascii = False  # room names are sent as they are (docs/api.md)
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


def create_app(
    site: SiteConfig, store: Store | None = None, live=None, test_config: dict | None = None
) -> Flask:
    """Build the web app. `live=None` means no MQTT: changes fan out to this process's streams only."""

    app = Flask(
        __name__,
        template_folder=str(PACKAGE_DIR / "templates"),
        static_folder=str(PACKAGE_DIR / "static"),
        static_url_path="/static",
    )
    app.config.from_mapping(
        SECRET_KEY=site.server.secret_key or None,
        SESSION_COOKIE_NAME="footfall_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=site.server.session_minutes),
        MAX_CONTENT_LENGTH=64 * 1024,
        FOOTFALL_NOW=utcnow,
        LOGIN_MAX_FAILURES=10,
        LOGIN_WINDOW_S=600,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = persisted_secret_key(site.data_dir)
    app.json = JsonProvider(app)

    if store is None:
        store = open_store(site)
    app.extensions["footfall"] = WebContext(site=site, store=store, live=live or LocalHub(), app=app)

    @app.teardown_appcontext
    def _close_store(_exc: BaseException | None) -> None:
        # One connection per thread/greenlet; close it with the request so greenlets do not leak them.
        store.close()

    i18n.init_app(app)
    auth.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    api.init_app(app)  # /healthz and the JSON error handlers
    dashboard.init_app(app)  # template filters, the site name, security headers
    metrics.init_app(app)
    security.init_app(app, site)  # last: CSRF check and security headers for every route
    return app


def persisted_secret_key(data_dir: Path) -> str:
    """A random key kept in data_dir/secret_key (mode 0600), so sessions survive restarts."""
    path = Path(data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        logger.warning("%s is empty; writing a new secret key", path)
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    logger.info("created a new session secret key in %s", path)
    return key
