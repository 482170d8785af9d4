"""The HTTP API under /api/v1 (PROTOCOL.md "HTTP API"), /healthz, and the JSON error handlers.

Every error on an API path is JSON `{"error": "...", "detail": "..."}` with its status; never a stack trace.
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from footfall.server import occupancy
from footfall.server.alerting import alerts_payload
from footfall.server.health import ingest_problems
from footfall.server.reports import parse_day
from footfall.server.rooms import live_states, room_state, today
from footfall.server.web import audit, data
from footfall.server.web.auth import ApiError, is_api_request, require
from footfall.server.web.context import web

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_OCCUPANCY = 100_000
MAX_REASON = 500


def _rooms_now() -> list[dict[str, Any]]:
    w = web()
    return live_states(w.site, w.store.rooms_live(), w.now())


@bp.get("/rooms")
@require("viewer")
def rooms():
    return jsonify(_rooms_now())


@bp.get("/rooms/<room>")
@require("viewer")
def room(room: str):
    w = web()
    if room not in w.site.rooms_by_id:
        raise ApiError(404, "not_found", f"no room {room!r}")
    return jsonify(next(s for s in _rooms_now() if s["room"] == room))


@bp.post("/rooms/<room>/adjust")
@require("staff")
def adjust(room: str):
    w = web()
    site_room = w.site.rooms_by_id.get(room)
    if site_room is None:
        raise ApiError(404, "not_found", f"no room {room!r}")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "bad_request", "send a JSON object with Content-Type: application/json")
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object")
    value = body.get("occupancy")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(422, "invalid", "occupancy: must be an integer")
    if not 0 <= value <= MAX_OCCUPANCY:
        raise ApiError(422, "invalid", f"occupancy: must be between 0 and {MAX_OCCUPANCY}")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ApiError(422, "invalid", "reason: required (why the count is corrected)")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise ApiError(422, "invalid", f"reason: at most {MAX_REASON} characters")
    now = w.now()
    day = today(w.site, now)
    with w.store.transaction() as tx:
        before = occupancy.current(tx.room_counts(room), day)
        after = occupancy.set_occupancy(before, value, now)
        tx.put_room_counts(room, after, now)
        tx.add_adjustment(room, now, current_user.audit_name, before.occupancy, value, reason)
        audit.log_web("adjust", room, tx=tx, old=before.occupancy, new=value, reason=reason)
    state = room_state(site_room, after, now)
    logger.info(
        "%s set %s occupancy %d -> %d (%s)", current_user.audit_name, room, before.occupancy, value, reason
    )
    try:
        w.live.publish_room_state(state)
    except Exception:  # the store is the truth; ingest republishes on its next change
        logger.exception("could not publish the corrected state of %s", room)
    return jsonify(state)


@bp.get("/devices")
@require("viewer")
def devices():
    w = web()
    return jsonify(data.device_list(w.site, w.store.devices(), w.now(), unknown=not _live(w)["live"]))


def _live(w) -> dict[str, Any]:
    """The live hub's view of the bus: when this server cannot hear its devices, their state is unknown."""
    return w.live.live_status()


@bp.get("/daily")
@require("viewer")
def daily():
    w = web()
    text = request.args.get("date")
    if text is None:
        day = today(w.site, w.now())
    else:
        try:
            day = parse_day(text)
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"date: {exc}") from None
    return jsonify(data.daily_report(w.site, w.store, day))


def _limit() -> int:
    text = request.args.get("limit", "100")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 1000:  # isdigit() alone takes "²"
        raise ApiError(400, "bad_request", "limit: must be an integer from 1 to 1000")
    return int(text)


@bp.get("/adjustments")
@require("staff")
def adjustments():
    return jsonify(web().store.adjustments(_limit()))


@bp.get("/dead-letters")
@require("staff")
def dead_letters():
    return jsonify(web().store.dead_letters(_limit()))


def sse(event: str, payload: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


@bp.get("/stream")
@require("viewer")
def stream():
    w = web()
    hub = w.live
    q = hub.subscribe()  # before reading the store, so no change falls between the snapshot and the stream
    try:
        rooms_now = _rooms_now()
        live_now = _live(w)
        devices_now = data.device_list(w.site, w.store.devices(), w.now(), unknown=not live_now["live"])
        alerts_now = alerts_payload(w.store)
    except BaseException:
        hub.unsubscribe(q)
        raise
    ping = current_app.config.get("SSE_PING_S", 15)

    def events() -> Iterator[str]:
        try:
            yield "retry: 3000\n\n"
            for state in rooms_now:
                yield sse("room", state)
            for device in devices_now:
                yield sse("device", device)
            yield sse("alerts", alerts_now)
            yield sse(
                "live", live_now
            )  # then a `live` event whenever the broker link or ingest comes or goes
            while True:
                try:
                    kind, payload = q.get(timeout=ping)
                except queue.Empty:
                    if not hub.is_subscribed(q):
                        return  # dropped for falling behind: the browser reconnects and gets everything anew
                    # A named event, not a comment, so the page sees it: a frozen server sends none, and the
                    # page stops claiming to be live after two missed pings.
                    yield sse("ping", {"every_s": ping})
                    continue
                yield sse(kind, payload)
        finally:
            hub.unsubscribe(q)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(events(), mimetype="text/event-stream", headers=headers)


def health() -> tuple[dict[str, Any], int]:
    w = web()
    problems = []
    try:
        w.store.ping()
    except Exception as exc:
        logger.warning("health: store query failed: %s", exc)
        problems.append("store: query failed")
    if getattr(w.live, "mqtt", False):
        # A real deployment (not a test app without a broker): ingest runs beside this process.
        if not w.live.connected:
            problems.append("mqtt: not connected to the broker")
        problems += ingest_problems(w.site.data_dir)
    if problems:
        return {"status": "degraded", "detail": "; ".join(problems)}, 503
    return {"status": "ok"}, 200


@bp.get("/healthz")
def healthz_v1():
    body, status = health()
    return jsonify(body), status


def healthz():
    body, status = health()
    return jsonify(body), status


# --- errors -------------------------------------------------------------------------------------


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": error, "detail": detail})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _http_error_name(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def init_app(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", healthz)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not is_api_request():
            return exc
        headers = {}
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return error_response(exc.code or 500, _http_error_name(exc), exc.description or "", headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.path)
        if is_api_request():
            return error_response(500, "internal_error", "the server failed; the error is in its log")
        return "Internal Server Error", 500
