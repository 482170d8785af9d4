"""The audit log: who did what and when (staff adjustments, schedule edits, exports, user changes, logins).

Writes go through `record_tx` (inside the transaction of the change itself, so the change and its audit line
commit together) or `record` (its own transaction). This module knows nothing of the web: web views record through
server/web/audit.py (`log_web`, which fills in the current user, the client address and the app's clock), and
admins read the log at /admin/audit and GET /api/v1/audit (server/web/audit_pages.py).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from footfall.clock import format_ts, utcnow

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
