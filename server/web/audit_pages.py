"""The audit log for admins: /admin/audit (a page) and GET /api/v1/audit (JSON), newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user

from footfall.server.audit import entries
from footfall.server.web.auth import ApiError, require, require_page
from footfall.server.web.context import web

bp = Blueprint("audit", __name__)


def _query() -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, high in (("limit", 1000), ("before", 2**62)):
        text = request.args.get(name)
        if text is None:
            continue
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= high:
            raise ApiError(400, "bad_request", f"{name}: must be an integer from 1 to {high}")
        args[name] = int(text)
    for name in ("action", "actor"):
        text = request.args.get(name)
        if text:
            if len(text) > 200:
                raise ApiError(400, "bad_request", f"{name}: at most 200 characters")
            args[name] = text
    return args


@bp.get("/api/v1/audit")
@require("admin")
def api_audit():
    return jsonify(entries(web().store, **_query()))


@bp.get("/admin/audit")
@require_page("admin")
def page_audit():
    try:
        query = _query()
    except ApiError:
        query = {}
    query.setdefault("limit", 200)
    rows = entries(web().store, **query)
    return render_template("audit.html", rows=rows, query=query, user=current_user)
