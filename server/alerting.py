"""Alerts that reach staff: the one API every part of the server uses to raise and clear them.

    raise_alert(tx, kind, device, message, now, room=None, event_id=None) -> (pk, opened)
    clear_alert(tx, kind, device, now, by="server") -> [pk, ...]
    clear_alerts(tx, now, by, pks=None, kind=None, device=None) -> [pk, ...]   (staff, one or in bulk)

`tx` is the store transaction the caller is already in (an ingest batch, a staff action), so an alert is committed
with what caused it. At most one alert of a kind is open per device: raising it again while it is open joins it
(`calls` + 1, `last_at`) instead of opening another, which is also what rate-limits help calls per kiosk. `device`
is "" (SITE_WIDE) for alerts about the server itself (ingest stalled, disk nearly full).

Opening or clearing an alert writes a notice in the same transaction; `server.webhooks` delivers each notice to
every configured webhook, so nothing raised before a crash is lost. The open alerts are published retained on
`footfall/<site>/alerts` by ingest only (`publish_alerts`): after a change made elsewhere (a staff clear in the web
process), the web asks ingest to republish with the server command `republish-alerts`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from footfall import topics
from footfall.clock import format_ts
from footfall.messages import encode_json

SITE_WIDE = ""
# Kinds raised by Footfall itself; others may be added (the dashboard shows their message).
KINDS = (
    "help",
    "device_offline",
    "ingest_stalled",
    "disk_low",
    "unknown_device",
    "wrong_site",
    "duplicate_device",
    "clock_skew",
    "seq_gap",
)
MAX_MESSAGE = 500


def raise_alert(
    tx: Any,
    kind: str,
    device: str,
    message: str,
    now: dt.datetime,
    *,
    room: str | None = None,
    event_id: str | None = None,
) -> tuple[int, bool]:
    """Open an alert, or join the open one of this kind and device. Returns (alert pk, True if newly opened)."""
    at = format_ts(now)
    message = str(message)[:MAX_MESSAGE]
    pk = tx.open_alert(kind, device)
    if pk is not None:
        tx.repeat_alert(pk, at, message)
        return pk, False
    return tx.insert_alert(
        kind, device, event_id or f"{kind}:{secrets.token_hex(8)}", room, at, message
    ), True


def clear_alert(tx: Any, kind: str, device: str, now: dt.datetime, by: str = "server") -> list[int]:
    """Close the open alert of this kind and device (its condition ended). Returns the pks cleared."""
    return clear_alerts(tx, now, by, kind=kind, device=device)


def clear_alerts(
    tx: Any,
    now: dt.datetime,
    by: str,
    *,
    pks: list[int] | None = None,
    kind: str | None = None,
    device: str | None = None,
) -> list[int]:
    """Close open alerts: the given pks, or all matching kind/device (None = any). Returns the pks cleared."""
    if pks is not None and not pks:
        return []
    return tx.close_alerts(format_ts(now), by, pks, kind, device)


def alert_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["pk"],
        "kind": row.get("kind") or "help",
        "device": row["device"],
        "room": row["room"],
        "message": row.get("message"),
        "raised_at": row["raised_at"],
        "last_at": row.get("last_at") or row["raised_at"],
        "calls": row.get("calls") or 1,
    }


def alerts_payload(store: Any) -> dict[str, Any]:
    """The open alerts, oldest first: the retained `alerts` message and GET /api/v1/alerts."""
    return {"v": 1, "alerts": [alert_json(a) for a in store.open_alerts()]}


def publish_alerts(link: Any, site: Any, store: Any) -> None:
    """Ingest only: the open alerts, retained on footfall/<site>/alerts."""
    link.publish(topics.alerts(site.id, site.prefix), encode_json(alerts_payload(store)), qos=1, retain=True)
