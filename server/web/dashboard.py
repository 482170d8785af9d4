"""Pages: the staff dashboard at / and the lobby big screen at /screen, both updated live over SSE."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from flask_login import current_user

from footfall.clock import parse_ts
from footfall.levels import LEVELS
from footfall.server import schedule
from footfall.server.rooms import live_states, today
from footfall.server.web import data, lobby
from footfall.server.web.auth import is_api_request, require_page
from footfall.server.web.context import web
from footfall.server.web.i18n import current_lang, room_name, translate
from footfall.site import OUTDOORS

bp = Blueprint("dashboard", __name__)
SCREEN_SESSIONS = 7  # as many as the lobby TV shows in type that reads from across the hall


def _overview() -> dict[str, Any]:
    w = web()
    now = w.now()
    day = today(w.site, now)
    rooms = live_states(w.site, w.store.rooms_live(), now)
    for rank, room in enumerate(sorted(rooms, key=fullness)):
        room["order"] = rank
        room["over"] = max(0, room["occupancy"] - room["capacity"]) if room["capacity"] > 0 else 0
    entrance_rooms = sorted(
        {door.inside for door in w.site.doors_by_device.values() if door.outside == "outdoors"}
    )
    return {
        "site": w.site,
        "rooms": rooms,
        "day": day,
        "visits": data.visits(w.site, w.store.day_crossings(day)),
        "in_building": sum(r["occupancy"] for r in rooms),
        "rooms_in_use": sum(1 for r in rooms if r["occupancy"] > 0),
        "entrance_rooms": entrance_rooms,
    }


def fullness(state: dict[str, Any]) -> tuple[int, float]:
    """How the dashboard orders rooms: full first, then busy, then the rest, each by share of capacity (most
    first); dashboard.js sorts live updates the same way."""
    share = state["occupancy"] / state["capacity"] if state["capacity"] > 0 else 0.0
    return (LEVELS[::-1].index(state["level"]), -share)


def _page_data(overview: dict[str, Any], **extra: Any) -> dict[str, Any]:
    lang = current_lang()
    site = overview["site"]
    return {
        "lang": lang,
        "timezone": site.timezone.key,
        "rooms": {room.id: {"name": room_name(room, lang), "capacity": room.capacity} for room in site.rooms},
        "roomOrder": [
            room.id for room in site.rooms
        ],  # the site file's order (JSON objects may be re-sorted)
        "entranceRooms": overview["entrance_rooms"],
        **extra,
    }


@bp.get("/")
@require_page("viewer")
def index():
    w = web()
    overview = _overview()
    devices = data.device_list(w.site, w.store.devices(), w.now())
    staff = current_user.has("staff")
    page = _page_data(overview, staff=staff)
    places = _device_places()
    return render_template(
        "dashboard.html",
        devices=devices,
        places=places,
        show_ids=_ids_to_show(devices, places),
        staff=staff,
        page=page,
        user=current_user,
        **overview,
    )


def _device_places() -> dict[str, str]:
    """Where each device is, for people: the room a door leads into (or the entrance), a kiosk's room."""
    site = web().site
    lang = current_lang()
    places = {}
    for device in site.devices:
        door = site.doors_by_device.get(device.id)
        if door is not None and OUTDOORS in (door.inside, door.outside):
            places[device.id] = translate("devices.entrance", lang)
        elif door is not None:
            places[device.id] = room_name(site.rooms_by_id[door.inside], lang)
        elif device.room:
            places[device.id] = room_name(site.rooms_by_id[device.room], lang)
    return places


def _ids_to_show(devices: list[dict[str, Any]], places: dict[str, str]) -> set[str]:
    """Devices a person cannot tell apart by place and kind (two counters on one room's doors, no place at all):
    these show their id too; the others keep one line each so all of them fit beside the rooms."""
    seen: dict[tuple[str, str], list[str]] = {}
    for d in devices:
        seen.setdefault((places.get(d["id"], ""), d["kind"]), []).append(d["id"])
    return {i for (place, _kind), ids in seen.items() if not place or len(ids) > 1 for i in ids}


@bp.get("/screen")
@require_page("viewer")
def screen():
    w = web()
    overview = _overview()
    token = request.args.get("token") if current_user.is_token else None
    page = _page_data(overview, token=token)
    day = overview["day"]
    today_sessions = lobby.sessions(
        w.site,
        schedule.list_items(w.store, day, day),
        w.store.day_checkins(day),
        {r["room"]: r["level"] for r in overview["rooms"]},
        w.now().astimezone(w.site.timezone),
    )
    # Running and coming sessions first; ended ones only while there is room on the screen.
    ordered = [s for s in today_sessions if s["state"] != "done"] + [
        s for s in today_sessions if s["state"] == "done"
    ]
    return render_template(
        "screen.html",
        page=page,
        user=current_user,
        sessions=ordered[:SCREEN_SESSIONS],
        more_sessions=max(0, len(ordered) - SCREEN_SESSIONS),
        floor_words=lobby.floor_words,
        **overview,
    )


def local_time(ts: str | None) -> str:
    """A wire timestamp shown in the site's time zone: 'HH:MM:SS' today, else 'MM-DD HH:MM'."""
    if not ts:
        return ""
    w = web()
    when = parse_ts(ts).astimezone(w.site.timezone)
    now = w.now().astimezone(w.site.timezone)
    if when.date() == now.date():
        return when.strftime("%H:%M:%S")
    if now - when < dt.timedelta(days=365):
        return when.strftime("%m-%d %H:%M")
    return when.strftime("%Y-%m-%d")


def init_app(app: Flask) -> None:
    app.add_template_filter(local_time, "localtime")

    @app.context_processor
    def _site() -> dict[str, Any]:
        return {"site_name": web().site.name}

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.endpoint in ("dashboard.index", "dashboard.screen", "auth.login") or is_api_request():
            response.headers.setdefault("Cache-Control", "no-store")
        return response
