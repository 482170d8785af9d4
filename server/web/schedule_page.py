"""The schedule: /api/v1/schedule (viewer reads, staff edits) and the /schedule page (a plain form, no script;
its posts carry the session's CSRF token, checked by server.web.security).

Every change is published retained to the kiosks on `footfall/<site>/schedule` when it touches today.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from footfall.server import schedule
from footfall.server.reports import parse_day
from footfall.server.rollup import KINDS
from footfall.server.rooms import today
from footfall.server.web.auth import ApiError, require, require_page
from footfall.server.web.context import web

logger = logging.getLogger(__name__)

bp = Blueprint("schedule", __name__)


def _publish_if_today(*dates: str) -> None:
    w = web()
    now = w.now()
    if today(w.site, now).isoformat() in dates:
        try:
            schedule.publish_schedule(w.site, w.store, w.live, now)
        except Exception:  # the store is the truth; the next change or the day boundary republishes
            logger.exception("could not publish today's schedule")


def _range() -> tuple[dt.date, dt.date]:
    w = web()
    try:
        start = parse_day(request.args.get("from") or today(w.site, w.now()).isoformat())
        end = parse_day(request.args["to"]) if request.args.get("to") else start + dt.timedelta(days=6)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"from, to: {exc}") from None
    if end < start or (end - start).days > 400:
        raise ApiError(400, "bad_request", "to: must be from 0 to 400 days after from")
    return start, end


def _invalid(exc: schedule.ScheduleError) -> ApiError:
    status = 409 if exc.field == "id" and "exists" in exc.message else 422
    return ApiError(status, "invalid" if status == 422 else "conflict", str(exc))


@bp.get("/api/v1/schedule")
@require("viewer")
def api_list():
    start, end = _range()
    return jsonify(schedule.list_items(web().store, start, end))


@bp.get("/api/v1/schedule/<item_id>")
@require("viewer")
def api_get(item_id: str):
    item = schedule.get_item(web().store, item_id)
    if item is None:
        raise ApiError(404, "not_found", f"no schedule item {item_id!r}")
    return jsonify(item)


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "bad_request", "send a JSON object with Content-Type: application/json")
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object")
    return body


@bp.post("/api/v1/schedule")
@require("staff")
def api_create():
    w = web()
    try:
        item = schedule.create_item(w.store, w.site, _body(), w.now())
    except schedule.ScheduleError as exc:
        raise _invalid(exc) from None
    _publish_if_today(item["date"])
    return jsonify(item), 201


@bp.route("/api/v1/schedule/<item_id>", methods=["PUT", "PATCH"])
@require("staff")
def api_update(item_id: str):
    w = web()
    old = schedule.get_item(w.store, item_id)
    try:
        item = schedule.update_item(w.store, w.site, item_id, _body(), w.now())
    except schedule.ScheduleError as exc:
        raise _invalid(exc) from None
    if item is None or old is None:
        raise ApiError(404, "not_found", f"no schedule item {item_id!r}")
    _publish_if_today(old["date"], item["date"])
    return jsonify(item)


@bp.delete("/api/v1/schedule/<item_id>")
@require("staff")
def api_delete(item_id: str):
    old = schedule.delete_item(web().store, item_id)
    if old is None:
        raise ApiError(404, "not_found", f"no schedule item {item_id!r}")
    _publish_if_today(old["date"])
    return jsonify(old)


# --- page ------------------------------------------------------------------------------------------------


@bp.route("/schedule", methods=["GET", "POST"])
@require_page("viewer")
def page():
    w = web()
    error, form = None, {}
    if request.method == "POST":
        if not current_user.has("staff"):
            abort(403)
        form = request.form.to_dict()
        action, item_id = form.pop("action", "save"), form.pop("id", "")
        try:
            if action == "delete":
                old = schedule.delete_item(w.store, item_id)
                _publish_if_today(old["date"] if old else "")
            elif item_id:
                old = schedule.get_item(w.store, item_id)
                item = schedule.update_item(w.store, w.site, item_id, form, w.now())
                _publish_if_today(*(x["date"] for x in (old, item) if x))
            else:
                item = schedule.create_item(w.store, w.site, form, w.now())
                _publish_if_today(item["date"])
            return redirect(
                url_for("schedule.page", **{"from": form.get("date") or request.args.get("from")})
            )
        except schedule.ScheduleError as exc:
            error = exc
            form["id"] = item_id
    start, end = _range()
    edit = schedule.get_item(w.store, request.args["edit"]) if request.args.get("edit") else None
    return render_template(
        "schedule.html",
        items=schedule.list_items(w.store, start, end),
        start=start,
        end=end,
        prev=(start - dt.timedelta(days=7)).isoformat(),
        next=(start + dt.timedelta(days=7)).isoformat(),
        edit=edit or form or None,
        error=error,
        kinds=KINDS,
        site_rooms=w.site.rooms_by_id,
        staff=current_user.has("staff"),
        user=current_user,
    ), (422 if error else 200)
