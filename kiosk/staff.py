"""Staff mode behind the PIN (stored hashed in kiosk.toml; wrong PINs back off per source, see kiosk/pin.py):
device, outbox queue, broker link, last events, default language."""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from footfall import __version__
from footfall.errors import ValidationError
from footfall.kiosk.config import LANGUAGES
from footfall.kiosk.pin import verify_pin

logger = logging.getLogger(__name__)

bp = Blueprint("staff", __name__, url_prefix="/api/staff")

SESSION_S = 600  # a staff session ends after 10 minutes (and when staff mode is left)


def _kiosk():
    return current_app.extensions["kiosk"]


def _require_staff():
    k = _kiosk()
    token = request.headers.get("X-Staff-Token", "")
    expires = k.staff_tokens.get(token)
    if not token or expires is None or expires < time.monotonic():
        k.staff_tokens.pop(token, None)
        return jsonify({"error": "forbidden", "detail": "staff PIN required"}), 403
    return None


@bp.post("/login")
def login():
    k = _kiosk()
    source = request.remote_addr or "unknown"
    wait = k.pins.wait_left(source)
    if wait > 0:
        return jsonify({"error": "locked", "detail": f"too many wrong PINs, wait {math.ceil(wait)} s"}), 429
    body = request.get_json(silent=True) or {}
    pin = body.get("pin") if isinstance(body, dict) else None
    if not verify_pin(pin, k.config.kiosk.staff_pin_hash):
        k.pins.failed(source)
        return jsonify({"error": "forbidden", "detail": "wrong PIN"}), 403
    k.pins.succeeded(source)
    now = time.monotonic()
    token = secrets.token_urlsafe(16)
    k.staff_tokens = {t: e for t, e in k.staff_tokens.items() if e > now}
    k.staff_tokens[token] = now + SESSION_S
    logger.info("staff mode opened from %s", source)
    return jsonify({"token": token})


@bp.post("/logout")
def logout():
    _kiosk().staff_tokens.pop(request.headers.get("X-Staff-Token", ""), None)
    return jsonify({"ok": True})


def _event_line(event: dict[str, Any]) -> dict[str, Any]:
    keys = ("seq", "type", "ts", "purpose", "adults", "children", "activity")
    line = {k: event[k] for k in keys if k in event}
    if "member" in event:
        line["member"] = "****"  # staff see that a code was given, not which
    return line


@bp.get("/status")
def status():
    denied = _require_staff()
    if denied:
        return denied
    k = _kiosk()
    runtime = k.runtime
    return jsonify(
        {
            "device": k.config.device.id,
            "site": k.config.device.site,
            "version": __version__,
            "queue": runtime.outbox.queue,
            "link": "connected" if runtime.link.connected.is_set() else "disconnected",
            "broker": f"{k.config.mqtt.host}:{k.config.mqtt.port}",
            "last_events": [_event_line(e) for e in runtime.last_events[:5]],
            "language": k.language(),
            "health": k.health(),
        }
    )


@bp.post("/language")
def language():
    denied = _require_staff()
    if denied:
        return denied
    body = request.get_json(silent=True) or {}
    lang = body.get("language") if isinstance(body, dict) else None
    if lang not in LANGUAGES:
        raise ValidationError(f"must be one of {', '.join(LANGUAGES)}", "language")
    _kiosk().local.set_setting("language", lang)
    return jsonify({"language": lang})


@bp.post("/help-clear")
def help_clear():
    denied = _require_staff()
    if denied:
        return denied
    _kiosk().clear_help()
    return jsonify({"ok": True})
