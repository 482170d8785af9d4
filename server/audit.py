"""The audit log: who did what and when (staff adjustments, schedule edits, exports, user changes, logins).

Writes go through `record_tx` (inside the transaction of the change itself, so the change and its audit line
commit together) or `record` (its own transaction). Web code calls `log_web(action, target, **detail)`, which
fills in the current user, the client address and the app's clock. Admins read it at /admin/audit and
GET /api/v1/audit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from flask import Blueprint, Flask, jsonify, render_template, request
from flask_login import current_user

from footfall.clock import format_ts, utcnow
from footfall.server.web import web
from footfall.server.web.auth import ApiError, require, require_page

logger = logging.getLogger(__name__)

MAX_DETAIL = 2000

# The actions Footfall records (others may be added; keep them short snake_case words).
ACTIONS = (
    "login",
    "login_failed",
    "logout",
    "adjust",
    "schedule_add",
    "schedule_edit",
    "schedule_delete",
    "export",
    "user_add",
    "user_passwd",
    "user_remove",
    "token_create",
    "device_add",
    "device_remove",
    "restore",
)


def _detail_json(detail: dict[str, Any] | None) -> str | None:
    if not detail:
        return None
    text = json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True)
    return (
        text if len(text) <= MAX_DETAIL else json.dumps({"truncated": text[:MAX_DETAIL]}, ensure_ascii=False)
    )


def record_tx(
    tx: Any,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Add one line inside an open store transaction."""
    tx.add_audit(format_ts(now or utcnow()), actor, action, target, _detail_json(detail), ip)


def record(store: Any, actor: str, action: str, target: str | None = None, **kwargs: Any) -> None:
    """Add one line in its own transaction."""
    with store.transaction() as tx:
        record_tx(tx, actor, action, target, **kwargs)


def entries(
    store: Any,
    limit: int = 100,
    before: int | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first; `before` is a pk for paging."""
    out = []
    for item in store.audit_rows(limit, before, action, actor):
        item["detail"] = json.loads(item["detail"]) if item["detail"] else None
        out.append(item)
    return out


# --- web ------------------------------------------------------------------------------------------


def web_actor() -> str:
    return current_user.audit_name if current_user and current_user.is_authenticated else "anonymous"


def log_web(
    action: str, target: str | None = None, tx: Any = None, actor: str | None = None, **detail: Any
) -> None:
    """Audit a web action by the current user; inside `tx` when given (then a failure fails the change)."""
    w = web()
    args = dict(detail=detail or None, ip=request.remote_addr, now=w.now())
    try:
        if tx is not None:
            record_tx(tx, actor or web_actor(), action, target, **args)
        else:
            record(w.store, actor or web_actor(), action, target, **args)
    except Exception:
        if tx is not None:
            raise  # inside the change's own transaction: the change must not commit without its audit line
        logger.exception("could not write the audit line %s %s", action, target)


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


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
