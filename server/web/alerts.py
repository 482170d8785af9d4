"""Help requests from kiosks ("call staff"): listed for staff until one of them clears it."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Flask, jsonify
from flask_login import current_user

from footfall import topics
from footfall.messages import encode_json
from footfall.server import audit
from footfall.server.ingest import alerts_payload
from footfall.server.web import web
from footfall.server.web.api import ApiError
from footfall.server.web.auth import require

logger = logging.getLogger(__name__)

bp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts")


@bp.get("")
@require("viewer")
def list_alerts():
    return jsonify(alerts_payload(web().store))


@bp.post("/<alert_id>/clear")
@require("staff")
def clear(alert_id: str):
    w = web()
    # A plain string in the route, so that authentication answers first (401/403), then a bad id 404s.
    pk = int(alert_id) if alert_id.isdigit() else -1
    alert = w.store.alert(pk)
    if alert is None:
        raise ApiError(404, "not_found", f"no alert {alert_id}")
    with w.store.transaction() as tx:
        if not tx.clear_alert(pk, current_user.audit_name, w.now()):
            raise ApiError(409, "conflict", f"alert {pk} was already cleared")
        audit.log_web("alert_clear", alert["device"], tx=tx, alert=pk)
    payload = alerts_payload(w.store)
    if getattr(w.live, "mqtt", False):
        site = w.site
        # The retained list for every dashboard, and the kiosk's own "help is coming" state.
        w.live.publish(topics.alerts(site.id, site.prefix), encode_json(payload), retain=True)
        command = {"v": 1, "id": f"alert-{pk}", "cmd": "help-clear"}
        w.live.publish(topics.device_cmd(site.id, alert["device"], site.prefix), json.dumps(command).encode())
    w.live.broadcast("alerts", payload)
    return jsonify(payload)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
