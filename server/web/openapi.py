"""The OpenAPI 3.1 document of the whole HTTP surface, served at `GET /api/v1/openapi.json` (docs/api.md).

It is the HTTP half of the contract next to docs/protocol.md. tests/test_openapi.py keeps it true: every Flask
route is in it and every path in it is a route; tests/test_schemathesis.py fuzzes the live app from it, as each
role, and checks that every answer has a documented status and matches its schema (never a 5xx). The pages are in it
too (text/html), so the route check covers them; their `x-page: true` says they answer a browser.

Each operation names its lowest role in `x-role` (`anyone`, `viewer`, `staff`, `admin`) and lists the errors it
can give, all in the one error shape `{"error": ..., "detail": ...}`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from footfall import __version__
from footfall.server.reports import PERIODS
from footfall.server.web.context import web
from footfall.server.web.openapi_schemas import JSON, RESPONSES, SCHEMAS, array, ref

bp = Blueprint("openapi", __name__)
BEARER = [{"bearer": []}, {"session": []}]
WITH_QUERY_TOKEN = [*BEARER, {"queryToken": []}]  # the lobby TV cannot send headers: viewer rights only


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path_param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "newest first")


def op(
    summary: str,
    role: str,
    ok: dict[str, Any],
    errors: tuple[int, ...] = (),
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    example: dict[str, Any] | None = None,
    security: list[dict[str, list]] | None = None,
) -> dict[str, Any]:
    """One operation; `ok` maps its success statuses to their responses. Auth errors follow from the role."""
    codes = set(errors)
    if role != "anyone":
        codes.add(401)
    if role in ("staff", "admin") or body is not None:
        codes.add(403)  # too low a role, or a session change without its CSRF token
    if body is not None:
        codes.update((400, 413, 422))
    responses = {**{str(k): v for k, v in ok.items()}}
    responses.update({str(c): {"$ref": f"#/components/responses/{c}"} for c in sorted(codes)})
    operation: dict[str, Any] = {"summary": summary, "x-role": role, "responses": responses}
    operation["security"] = [] if role == "anyone" else (security or BEARER)
    if params:
        operation["parameters"] = params
    if body is not None:
        media = {"schema": body, **({"example": example} if example else {})}
        operation["requestBody"] = {"required": True, "content": {JSON: media}}
    return operation


def json_ok(schema: dict[str, Any], description: str = "OK", status: int = 200) -> dict[int, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


def page(summary: str, role: str, extra: dict[int, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """A page: HTML, or a redirect to /login (302) without a session; 403 (HTML) when the role is too low."""
    html = {"text/html": {"schema": {"type": "string"}}}
    ok: dict[int, Any] = {200: {"description": "the page", "content": html}}
    if role != "anyone":
        ok[302] = {
            "description": "to /login?next=... without a session",
            "headers": {"Location": {"schema": {}}},
        }
        ok[403] = {"description": "the role is too low (HTML)", "content": html}
    ok.update(extra or {})
    operation = op(summary, "anyone", ok, **kwargs)
    operation["x-role"], operation["x-page"] = role, True
    operation["security"] = [] if role == "anyone" else BEARER
    return operation


HTML_403 = {403: {"description": "a form posted without its CSRF token", "content": {"text/html": {}}}}
REDIRECT = {302: {"description": "done: back to a page", "headers": {"Location": {"schema": {}}}}}
ITEM = path_param("item_id")
KIND = path_param("kind", {"enum": list(PERIODS)})
REPORT_PARAMS = [
    query("date", {"type": "string"}, "daily, weekly: YYYY-MM-DD (default today)"),
    query("month", {"type": "string"}, "monthly: YYYY-MM"),
    query("year", {"type": "string"}, "annual: YYYY"),
]
EXPORT_PARAMS = [*REPORT_PARAMS, query("lang", {"enum": ["zh-CN", "en"]}, "labels of the export")]
RANGE = [query("from", {"type": "string"}, "YYYY-MM-DD, default today"), query("to", {"type": "string"})]
HEALTH = {
    **json_ok(ref("Health")),
    503: {"description": "degraded", "content": {JSON: {"schema": ref("Health")}}},
}


def file_ok(mime: str) -> dict[int, Any]:
    return {200: {"description": "the export", "content": {mime: {"schema": {"type": "string"}}}}}


def paths(room_ids: list[str]) -> dict[str, Any]:
    room = path_param("room", {"type": "string", "examples": room_ids})  # this site's rooms
    sched_body = ref("ScheduleInput")
    sched_example = {
        "title": "少儿绘本",
        "kind": "class",
        "room": room_ids[0] if room_ids else "hall",
        "date": "2026-12-01",
        "start": "09:00",
        "end": "10:00",
    }
    clear_body = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "maxLength": 64},
            "device": {"type": "string", "maxLength": 64},
            "ids": array({"type": "integer"}),
        },
    }
    adjust_body = {
        "type": "object",
        "required": ["occupancy", "reason"],
        "properties": {
            "occupancy": {"type": "integer", "minimum": 0, "maximum": 100_000},
            "reason": {"type": "string", "minLength": 1, "maxLength": 500},
        },
    }
    login_form = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                        "csrf_token": {"type": "string"},
                    },
                }
            }
        },
    }
    login_post = page("log in (a form with the page's CSRF token)", "anyone", {**REDIRECT, **HTML_403})
    login_post["responses"]["401"] = {
        "description": "wrong user name or password",
        "content": {"text/html": {}},
    }
    login_post["responses"]["429"] = {"description": "too many failed logins", "content": {"text/html": {}}}
    login_post["requestBody"] = login_form
    schedule_post = page("add, change or delete an item (a form, staff)", "staff", {**REDIRECT})
    schedule_post["requestBody"] = {
        "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
    }
    schedule_post["responses"]["400"] = {"$ref": "#/components/responses/400"}
    schedule_post["responses"]["422"] = {
        "description": "the page, with what is wrong",
        "content": {"text/html": {}},
    }
    items = array(ref("ScheduleItem"))
    return {
        "/": {"get": page("the staff dashboard", "viewer")},
        "/screen": {"get": page("the lobby big screen (also ?token=)", "viewer")},
        "/login": {"get": page("the login form", "anyone"), "post": login_post},
        "/logout": {
            "post": op("log out: ends every session of the user", "anyone", {**REDIRECT, **HTML_403})
        },
        "/reports": {"get": page("reports: to the monthly report", "viewer")},
        "/reports/{kind}": {
            "get": page(
                "a report page",
                "viewer",
                {400: {"$ref": "#/components/responses/400"}},
                params=[path_param("kind", {"type": "string", "examples": list(PERIODS)}), *REPORT_PARAMS],
            )
        },
        "/schedule": {
            "get": page(
                "the week's schedule", "viewer", {400: {"$ref": "#/components/responses/400"}}, params=RANGE
            ),
            "post": schedule_post,
        },
        "/admin/audit": {"get": page("the audit log", "admin")},
        "/healthz": {"get": op("health of this process, the store and ingest", "anyone", HEALTH)},
        "/metrics": {
            "get": op(
                "Prometheus metrics", "viewer", {200: {"description": "text", "content": {"text/plain": {}}}}
            )
        },
        "/api/v1/openapi.json": {"get": op("this document", "anyone", json_ok({"type": "object"}))},
        "/api/v1/healthz": {"get": op("as /healthz", "anyone", HEALTH)},
        "/api/v1/rooms": {
            "get": op(
                "every room's state", "viewer", json_ok(array(ref("RoomState"))), security=WITH_QUERY_TOKEN
            )
        },
        "/api/v1/rooms/{room}": {
            "get": op("one room's state", "viewer", json_ok(ref("RoomState")), (404,), params=[room])
        },
        "/api/v1/rooms/{room}/adjust": {
            "post": op(
                "set the live occupancy",
                "staff",
                json_ok(ref("RoomState")),
                (404,),
                params=[room],
                body=adjust_body,
                example={"occupancy": 5, "reason": "counted by hand"},
            )
        },
        "/api/v1/devices": {
            "get": op("every device with its last status", "viewer", json_ok(array(ref("Device"))))
        },
        "/api/v1/daily": {
            "get": op(
                "a day's counts",
                "viewer",
                json_ok(ref("Daily")),
                (400,),
                params=[query("date", {"type": "string"})],
                security=WITH_QUERY_TOKEN,
            )
        },
        "/api/v1/adjustments": {
            "get": op(
                "the latest corrections", "staff", json_ok(array(ref("Adjustment"))), (400,), params=[LIMIT]
            )
        },
        "/api/v1/dead-letters": {
            "get": op(
                "the latest rejected MQTT messages",
                "staff",
                json_ok(array(ref("DeadLetter"))),
                (400,),
                params=[LIMIT],
            )
        },
        "/api/v1/audit": {
            "get": op(
                "the audit log, newest first",
                "admin",
                json_ok(array(ref("AuditEntry"))),
                (400,),
                params=[
                    LIMIT,
                    query("before", {"type": "integer", "minimum": 1}),
                    query("action", {"type": "string", "maxLength": 200}),
                    query("actor", {"type": "string", "maxLength": 200}),
                ],
            )
        },
        "/api/v1/stream": {
            "get": op(
                "Server-Sent Events: room, device, alerts, live, ping",
                "viewer",
                {200: {"description": "text/event-stream, endless", "content": {"text/event-stream": {}}}},
                security=WITH_QUERY_TOKEN,
            )
        },
        "/api/v1/alerts": {"get": op("the open alerts, oldest first", "viewer", json_ok(ref("Alerts")))},
        "/api/v1/alerts/{alert_id}/clear": {
            "post": op(
                "clear one alert",
                "staff",
                json_ok(ref("Alerts")),
                (404, 409),
                params=[path_param("alert_id")],
            )
        },
        "/api/v1/alerts/clear": {
            "post": op(
                "clear the open alerts matching kind/device, or the listed ids",
                "staff",
                json_ok(ref("Alerts")),
                body=clear_body,
            )
        },
        "/api/v1/schedule": {
            "get": op("the schedule between two dates", "viewer", json_ok(items), (400,), params=RANGE),
            "post": op(
                "add an item",
                "staff",
                json_ok(ref("ScheduleItem"), "created", 201),
                (409,),
                body=sched_body,
                example=sched_example,
            ),
        },
        "/api/v1/schedule/{item_id}": {
            "get": op("one item", "viewer", json_ok(ref("ScheduleItem")), (404,), params=[ITEM]),
            "put": op(
                "change an item",
                "staff",
                json_ok(ref("ScheduleItem")),
                (404, 409),
                params=[ITEM],
                body=sched_body,
            ),
            "patch": op(
                "change some fields of an item",
                "staff",
                json_ok(ref("ScheduleItem")),
                (404, 409),
                params=[ITEM],
                body=sched_body,
            ),
            "delete": op(
                "delete an item; returns it", "staff", json_ok(ref("ScheduleItem")), (404,), params=[ITEM]
            ),
        },
        "/api/v1/reports/{kind}": {
            "get": op("a report", "viewer", json_ok(ref("Report")), (400, 404), params=[KIND, *REPORT_PARAMS])
        },
        "/api/v1/reports/{kind}.csv": {
            "get": op(
                "a report as CSV (UTF-8 with BOM)",
                "viewer",
                file_ok("text/csv"),
                (400, 404),
                params=[KIND, *EXPORT_PARAMS],
            )
        },
        "/api/v1/reports/{kind}.xlsx": {
            "get": op(
                "a report as XLSX",
                "viewer",
                file_ok("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                (400, 404),
                params=[KIND, *EXPORT_PARAMS],
            )
        },
    }


def document(room_ids: list[str]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Footfall HTTP API",
            "version": __version__,
            "description": "docs/api.md explains each route; docs/protocol.md is the MQTT half of the contract.",
        },
        "paths": paths(room_ids),
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "footfall token create"},
                "session": {"type": "apiKey", "in": "cookie", "name": "footfall_session"},
                "queryToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "viewer rights only",
                },
            },
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document([r.id for r in web().site.rooms]))
