"""The district web (`footfall district web`): its own Flask app over the district's PostgreSQL store, apart from
any site's app. A dashboard of every site (live occupancy, today's entries, devices online, open alerts; sortable)
that drills into each site's rooms, and district reports per site and in total with CSV and XLSX downloads.

Roles (server/district_web/auth.py): a district viewer sees every site; a site's staff only their own.
Each request opens its own PostgreSQL connection (the migrations ran once, when the app was made).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from footfall.clock import utcnow
from footfall.server.district_store import DistrictStore
from footfall.server.web.auth import ApiError

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # server/
ERROR_WORDS = {
    400: "请求有误", 401: "请先登录", 403: "您没有查看此页面的权限", 404: "没有这个页面或站点",
    405: "不支持这种请求方式", 500: "服务器出错了，请稍后再试", 503: "数据库暂时无法连接，请稍后再试",
}  # fmt: skip


def create_app(dsn: str, secret_key: str | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """`secret_key` signs the session cookies (the command keeps one in a file); None: a new one per start."""
    from footfall.server.district_web import auth, reports, views
    from footfall.server.web import security

    app = Flask(
        __name__,
        template_folder=str(PACKAGE_DIR / "templates"),
        static_folder=str(PACKAGE_DIR / "static"),
        static_url_path="/static",
    )
    app.config.from_mapping(
        SECRET_KEY=secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="footfall_district_session",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=8),
        MAX_CONTENT_LENGTH=16 * 1024,
        FOOTFALL_NOW=utcnow,
        JSON_AS_ASCII=False,
    )
    if test_config:
        app.config.update(test_config)
    app.json.ensure_ascii = False  # site and room names as they are
    app.json.sort_keys = False
    DistrictStore(dsn).close()  # apply the migrations once, not per request
    app.config["DISTRICT_DSN"] = dsn

    @app.teardown_request
    def _close_store(_exc: BaseException | None) -> None:
        store = g.pop("store", None)
        if store is not None:
            store.close()

    @app.context_processor
    def _user() -> dict[str, Any]:
        from flask_login import current_user

        return {"user": current_user}

    auth.init_app(app)
    views.init_app(app)
    reports.init_app(app)
    security.init_app(app)  # last: the site app's CSRF check and security headers
    _error_handlers(app)
    return app


def store() -> DistrictStore:
    """This request's connection to the district store, opened on first use (static files need none)."""
    if "store" not in g:
        g.store = DistrictStore(current_app.config["DISTRICT_DSN"], migrate=False)
    return g.store


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error_page(status: int, detail: str = ""):
    if _wants_json():
        return jsonify({"error": ERROR_WORDS.get(status, "error"), "detail": detail}), status
    return render_template("district/error.html", status=status, words=ERROR_WORDS.get(status, "")), status


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        body = jsonify({"error": exc.error, "detail": exc.detail})
        return body, exc.status, exc.headers

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _error_page(exc.code or 500, exc.description or "")

    @app.errorhandler(psycopg.OperationalError)
    def _database_down(exc: psycopg.OperationalError):
        logger.warning("district store unreachable: %s", exc)
        return _error_page(503, "the district database cannot be reached")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        logger.exception("district web: unexpected error on %s", request.path)
        return _error_page(500, "internal error")
