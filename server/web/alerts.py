"""Alerts for staff (help calls, offline devices, stalled ingest, low disk...): listed until cleared.

Staff clear one (`POST /api/v1/alerts/<id>/clear`) or many at once (`POST /api/v1/alerts/clear` with
`{"kind": ..., "device": ...}`, either optional, or `{"ids": [...]}`). The web process changes only the store: it
asks ingest (`republish-alerts` on server/cmd) to republish the retained list and to tell the kiosks of cleared
help calls; its own live streams get the new list at once.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from flask_login import current_user

from footfall.server.alerting import alerts_payload, clear_alerts
from footfall.server.web import audit
from footfall.server.web.api import ApiError
from footfall.server.web.auth import require
from footfall.server.web.context import web

logger = logging.getLogger(__name__)

bp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts")
MAX_IDS = 1000


@bp.get("")
@require("viewer")
def list_alerts():
    return jsonify(alerts_payload(web().store))


def _cleared(pks: list[int]):
    """Tell ingest and this process's streams; answer with the open alerts left."""
    w = web()
    payload = alerts_payload(w.store)
    if pks and getattr(w.live, "mqtt", False):
        try:
            w.live.ask_ingest({"v": 1, "cmd": "republish-alerts", "cleared": pks})
        except Exception:  # the store is the truth; ingest republishes with its next alert change
            logger.exception("could not ask ingest to republish the alerts")
    w.live.broadcast("alerts", payload)
    return jsonify({**payload, "cleared": pks})


@bp.post("/<alert_id>/clear")
@require("staff")
def clear(alert_id: str):
    w = web()
    # A plain string in the route, so that authentication answers first (401/403), then a bad id 404s.
    pk = int(alert_id) if alert_id.isdigit() and len(alert_id) < 19 else -1
    alert = w.store.alert(pk)
    if alert is None:
        raise ApiError(404, "not_found", f"no alert {alert_id}")
    with w.store.transaction() as tx:
        if not clear_alerts(tx, w.now(), current_user.audit_name, pks=[pk]):
            raise ApiError(409, "conflict", f"alert {pk} was already cleared")
        audit.log_web("alert_clear", alert["device"], tx=tx, alert=pk)
    return _cleared([pk])


@bp.post("/clear")
@require("staff")
def clear_many():
    """Bulk clear: every open alert matching `kind` and/or `device`, or the listed `ids`; `{}` clears all."""
    w = web()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'send a JSON object, e.g. {"kind": "help"} or {"ids": [3, 4]}')
    unknown = set(body) - {"kind", "device", "ids"}
    if unknown:
        raise ApiError(422, "invalid", f"unknown field(s): {', '.join(sorted(unknown))}")
    for key in ("kind", "device"):
        if key in body and not (isinstance(body[key], str) and len(body[key]) <= 64):
            raise ApiError(422, "invalid", f"{key}: must be a string")
    ids = body.get("ids")
    if ids is not None and (
        not isinstance(ids, list)
        or len(ids) > MAX_IDS
        or not all(type(i) is int and 0 < i < 2**63 for i in ids)
    ):
        raise ApiError(422, "invalid", f"ids: must be a list of at most {MAX_IDS} alert ids")
    with w.store.transaction() as tx:
        pks = clear_alerts(
            tx, w.now(), current_user.audit_name, pks=ids, kind=body.get("kind"), device=body.get("device")
        )
        if pks:
            audit.log_web(
                "alert_clear", body.get("device") or body.get("kind") or "all", tx=tx, alerts=len(pks)
            )
    return _cleared(pks)
