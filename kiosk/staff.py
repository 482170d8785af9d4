"""Staff mode behind the PIN from kiosk.toml: device, outbox queue, broker link, last events, default language."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from footfall import __version__
from footfall.errors import ValidationError
from footfall.kiosk.config import LANGUAGES

bp = Blueprint("staff", __name__, url_prefix="/api/staff")

SESSION_S = 600  # a staff session ends after 10 minutes (and when staff mode is left)
MAX_FAILURES = 5  # wrong PINs within LOCK_S lock the PIN pad for LOCK_S
LOCK_S = 60


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
    now = time.monotonic()
    k.pin_failures = [t for t in k.pin_failures if now - t < LOCK_S]
    if len(k.pin_failures) >= MAX_FAILURES:
        return jsonify({"error": "locked", "detail": f"too many wrong PINs, wait {LOCK_S} s"}), 429
    body = request.get_json(silent=True) or {}
    pin = body.get("pin") if isinstance(body, dict) else None
    if not isinstance(pin, str) or not hmac.compare_digest(
        pin.encode(), k.config.kiosk["staff_pin"].encode()
    ):
        k.pin_failures.append(now)
        return jsonify({"error": "forbidden", "detail": "wrong PIN"}), 403
    token = secrets.token_urlsafe(16)
    k.staff_tokens = {t: e for t, e in k.staff_tokens.items() if e > now}
    k.staff_tokens[token] = now + SESSION_S
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
            "device": k.config.device["id"],
            "site": k.config.device["site"],
            "version": __version__,
            "queue": runtime.outbox.queue,
            "link": "connected" if runtime.link.connected.is_set() else "disconnected",
            "broker": f"{k.config.mqtt['host']}:{k.config.mqtt['port']}",
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
