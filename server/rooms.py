"""Room state objects (PROTOCOL.md "Room state"), built from live counts and the site's rooms."""

from __future__ import annotations

import datetime as dt
from typing import Any

from footfall.clock import format_ts, local_day
from footfall.levels import level_for
from footfall.messages import VERSION
from footfall.server.occupancy import RoomCounts, current
from footfall.site import Room, SiteConfig


def room_state(room: Room, counts: RoomCounts, now: dt.datetime) -> dict[str, Any]:
    return {
        "v": VERSION,
        "room": room.id,
        "name": room.name,
        "name_en": room.name_en,
        "floor": room.floor,
        "occupancy": counts.occupancy,
        "capacity": room.capacity,
        "level": level_for(counts.occupancy, room.capacity),
        "entries_today": counts.entries,
        "exits_today": counts.exits,
        "raw_net": counts.raw_net,
        "corrected": counts.corrected,
        "peak": counts.peak,
        "peak_at": format_ts(counts.peak_at) if counts.peak_at else None,
        "day": counts.day.isoformat(),
        "ts": format_ts(now),
    }


def today(site: SiteConfig, now: dt.datetime) -> dt.date:
    return local_day(now, site.timezone, site.day_starts)


def live_states(site: SiteConfig, stored: dict[str, RoomCounts], now: dt.datetime) -> list[dict[str, Any]]:
    """Every configured room, in config order; rooms with no counts today show zero."""
    day = today(site, now)
    return [room_state(room, current(stored.get(room.id), day), now) for room in site.rooms]
