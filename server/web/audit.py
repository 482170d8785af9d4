"""Audit lines for web actions: who (the signed-in user, or "anonymous"), from where, at the app's clock.

The log itself is server/audit.py; its pages are server/web/audit_pages.py. This module imports neither the views
nor auth, so every view (auth's login included) can record without an import circle.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask_login import current_user

from footfall.server.audit import record, record_tx
from footfall.server.web.context import web

logger = logging.getLogger(__name__)


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
