"""The schemas and error responses of the OpenAPI document (server/web/openapi.py builds the paths from them).

Objects list the fields Footfall sends and requires the ones always present; more may come (v1 clients ignore
unknown fields, docs/protocol.md). Every error is the one shape `{"error": ..., "detail": ...}` and nothing else.
"""

from __future__ import annotations

from typing import Any

from footfall.server.rollup import KINDS

JSON = "application/json"
ERROR_NAMES = {
    400: "bad_request: the body is not JSON, or a bad parameter (dates run from 2000-01-01 to 2199-12-31)",
    401: "unauthorized: no, unknown or malformed credentials (WWW-Authenticate: Bearer)",
    403: "forbidden: the role is too low, or csrf: a session change without its X-CSRF-Token",
    404: "not_found: no such room, item, alert or report",
    409: "conflict: the change conflicts with the stored state",
    413: "request_entity_too_large: a body over 64 KiB",
    422: "invalid: JSON of the wrong shape or values; the detail names the field",
    429: "too many failed logins from this address",
}
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "examples": ["2026-11-28"]}
TS = {"type": "string", "examples": ["2026-11-28T02:10:00.000Z"]}
NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "detail"],
        "additionalProperties": False,
        "properties": {"error": {"type": "string", "minLength": 1}, "detail": {"type": "string"}},
    },
    "RoomState": obj(
        ["v", "room", "occupancy", "capacity", "level", "entries_today", "exits_today", "day", "ts"],
        v={"const": 1},
        room={"type": "string"},
        name={"type": "string"},
        name_en=NULLABLE_STR,
        occupancy={"type": "integer", "minimum": 0},
        capacity={"type": "integer", "minimum": 0},
        level={"enum": ["ok", "busy", "full"]},
        entries_today={"type": "integer"},
        exits_today={"type": "integer"},
        raw_net={"type": "integer"},
        corrected={"type": "integer"},
        peak={"type": "integer"},
        peak_at=NULLABLE_STR,
        day=DATE,
        ts=TS,
    ),
    "Device": obj(
        ["id", "kind", "state", "last_seen", "queue", "health", "version"],
        id={"type": "string"},
        kind={"enum": ["counter", "kiosk"]},
        state={"enum": ["online", "offline", "unknown"]},
        last_seen=NULLABLE_STR,
        queue=NULLABLE_INT,
        health={"type": ["object", "null"]},
        room=NULLABLE_STR,
        version=NULLABLE_STR,
    ),
    "Daily": obj(
        ["date", "visits", "rooms", "checkins"],
        date=DATE,
        visits={"type": "integer", "minimum": 0},
        rooms=array(obj(["room", "entries", "exits", "peak"], room={"type": "string"})),
        checkins=obj(["total", "people", "by_purpose"], by_purpose={"type": "object"}),
    ),
    "Adjustment": obj(
        ["room", "at", "user", "from_value", "to_value", "reason"],
        room={"type": "string"},
        at=TS,
        user={"type": "string"},
        from_value={"type": "integer"},
        to_value={"type": "integer"},
        reason={"type": "string"},
    ),
    "DeadLetter": obj(
        ["topic", "excerpt", "size", "reason", "received_at"],
        topic={"type": "string"},
        excerpt={"type": "string"},
        size={"type": "integer"},
        reason={"type": "string"},
        received_at=TS,
    ),
    "AuditEntry": obj(["at", "actor", "action"], at=TS, actor={"type": "string"}, action={"type": "string"}),
    "Alerts": obj(
        ["v", "alerts"],
        v={"const": 1},
        alerts=array(
            obj(
                ["id", "kind", "device", "raised_at", "calls"],
                id={"type": "integer"},
                kind={"type": "string"},
                device={"type": "string"},
                room=NULLABLE_STR,
                message=NULLABLE_STR,
                raised_at=TS,
                last_at=TS,
                calls={"type": "integer"},
            )
        ),
    ),
    "ScheduleItem": obj(
        ["id", "title", "kind", "room", "date", "start", "end"],
        id={"type": "string"},
        title={"type": "string"},
        title_en=NULLABLE_STR,
        kind={"enum": list(KINDS)},
        room={"type": "string"},
        date=DATE,
        start={"type": "string"},
        end={"type": "string"},
        capacity=NULLABLE_INT,
        partner=NULLABLE_STR,
    ),
    "ScheduleInput": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
            "title": {"type": "string", "maxLength": 100},
            "title_en": {"type": "string", "maxLength": 100},
            "kind": {"enum": list(KINDS)},
            "room": {"type": "string"},
            "date": DATE,
            "start": {"type": "string", "examples": ["09:30"]},
            "end": {"type": "string", "examples": ["11:00"]},
            "capacity": {"type": "integer", "minimum": 0},
            "partner": {"type": "string"},
        },
    },
    "Report": obj(["site", "period", "rooms", "hours"], period=obj(["kind", "label", "start", "end"])),
    "Health": obj(["status"], status={"enum": ["ok", "degraded"]}, detail={"type": "string"}),
}

RESPONSES: dict[str, Any] = {
    str(code): {
        "description": text,
        "content": {JSON: {"schema": ref("Error")}},
        **({"headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}} if code == 401 else {}),
    }
    for code, text in ERROR_NAMES.items()
}
