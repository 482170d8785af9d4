"""Reads shared by the API and the pages: devices with staleness, the daily report, today's visits.

Pure helpers take their inputs (site, rows, now); `server.web.api` and `server.web.dashboard` fetch them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from footfall.clock import format_ts, parse_ts
from footfall.messages import PURPOSES
from footfall.server import occupancy
from footfall.server.reports import day_corrections
from footfall.server.rollup import entrance_direction
from footfall.server.store import Store
from footfall.site import SiteConfig

# Devices republish status at least every 60 s; two missed heartbeats plus slack mean it is gone.
STALE_AFTER = dt.timedelta(seconds=150)


def device_list(
    site: SiteConfig, stored: Iterable[dict[str, Any]], now: dt.datetime, unknown: bool = False
) -> list[dict[str, Any]]:
    """Every device of the site file, merged with what the store knows; stale 'online' shows 'offline'.

    `unknown`: the server itself does not hear the bus (its broker link or ingest is down), so it cannot tell
    whether a device is online: every state is 'unknown' rather than a false 'offline'."""
    rows = {row["id"]: row for row in stored}
    out = []
    for device in site.devices:
        row = rows.get(device.id)
        if row is None:
            out.append(
                {
                    "id": device.id,
                    "kind": device.kind,
                    "state": "unknown",
                    "last_seen": None,
                    "queue": None,
                    "health": None,
                    "room": device.room,
                    "version": None,
                }
            )
            continue
        state = row.get("state") or "unknown"
        last_seen = row.get("last_seen")
        if state == "online" and (last_seen is None or now - parse_ts(last_seen) > STALE_AFTER):
            state = "offline"
        if unknown:
            state = "unknown"
        out.append(
            {
                "id": device.id,
                "kind": device.kind,
                "state": state,
                "last_seen": last_seen,
                "queue": row.get("queue"),
                "health": row.get("health"),
                "room": device.room,
                "version": row.get("version"),
            }
        )
    return out


def visits(site: SiteConfig, crossings: Iterable[tuple[dt.datetime, str, str, int]]) -> int:
    """People who came into the building from outdoors (crossings of entrance doors only).

    Not the entries of the entrance rooms: those also count people coming back from an inner room.
    """
    entering = entrance_direction(site)
    return sum(count for _ts, device, direction, count in crossings if entering.get(device) == direction)


def daily_report(site: SiteConfig, store: Store, day: dt.date) -> dict[str, Any]:
    crossings = store.day_crossings(day)
    # The same definition as live occupancy and the reports (docs/reports.md, "Occupancy and peak").
    corrections = day_corrections(site, store, day)
    rooms = occupancy.replay(crossings, site.doors_by_device, day, corrections)
    room_rows = []
    for room in site.rooms:
        counts = rooms.get(room.id) or occupancy.RoomCounts(day=day)
        room_rows.append(
            {
                "room": room.id,
                "entries": counts.entries,
                "exits": counts.exits,
                "peak": counts.peak,
                "peak_at": format_ts(counts.peak_at) if counts.peak_at else None,
            }
        )
    by_purpose = dict.fromkeys(PURPOSES, 0)
    people = 0
    checkins = store.day_checkins(day)
    for row in checkins:
        purpose = row.get("purpose") or "other"
        by_purpose[purpose] = by_purpose.get(purpose, 0) + 1
        people += (row.get("adults") or 0) + (row.get("children") or 0)
    return {
        "date": day.isoformat(),
        "visits": visits(site, crossings),
        "rooms": room_rows,
        "checkins": {"total": len(checkins), "by_purpose": by_purpose, "people": people},
    }
