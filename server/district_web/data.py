"""What the district web reads from the district's PostgreSQL store: every site's live figures (from the sites'
retained room, device and alert topics, kept by the ingest workers), today's entries counted now from the raw
events, and the stored daily rollups (`footfall district rollup`) for the reports.

Each function takes a psycopg connection and only reads.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from footfall.clock import local_day
from footfall.server.district_store import MOVES_SQL
from footfall.site import OUTDOORS

SORT_KEYS = ("name", "occupancy", "entries_today", "devices_online", "alerts")


def sites(conn) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT site, name, timezone, day_starts, url FROM sites ORDER BY site").fetchall()
    return [
        {"site": s, "name": n, "timezone": tz, "day_starts": ds, "url": url} for s, n, tz, ds, url in rows
    ]


def site_today(site: dict[str, Any], now: dt.datetime) -> dt.date:
    return local_day(now, ZoneInfo(site["timezone"]), site["day_starts"])


def live_day(
    conn, day: dt.date, site: str | None = None
) -> tuple[dict[str, int], dict[tuple[str, str], list]]:
    """A local day's figures counted now from the raw events: visits per site, and (entries, exits) per
    (site, room); the same arithmetic as the nightly rollup."""
    where, args = ("WHERE site = %(site)s", {"day": day, "site": site}) if site else ("", {"day": day})
    moves = conn.execute(f"SELECT site, entered, left_room, n FROM ({MOVES_SQL}) m {where}", args).fetchall()
    visits: dict[str, int] = defaultdict(int)
    rooms: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0])
    for s, entered, left_room, n in moves:
        n = int(n)
        if left_room == OUTDOORS:
            visits[s] += n
        if entered != OUTDOORS:
            rooms[(s, entered)][0] += n
        if left_room != OUTDOORS:
            rooms[(s, left_room)][1] += n
    return dict(visits), dict(rooms)


def overview(conn, now: dt.datetime, only: str | None = None) -> list[dict[str, Any]]:
    """Every site (or only one) with its live occupancy, today's entries, devices online and open alerts."""
    listed = [s for s in sites(conn) if only is None or s["site"] == only]
    occupancy = {
        site: (int(occ), int(cap), n, updated)
        for site, occ, cap, n, updated in conn.execute(
            "SELECT site, sum(occupancy), sum(capacity), count(*), max(updated) FROM live_rooms GROUP BY site"
        )
    }
    devices = {
        site: (int(online), int(total))
        for site, online, total in conn.execute(
            "SELECT site, count(*) FILTER (WHERE online), count(*) FROM live_devices GROUP BY site"
        )
    }
    alerts = dict(conn.execute("SELECT site, open FROM live_alerts").fetchall())
    todays = {s["site"]: site_today(s, now) for s in listed}
    visits: dict[str, int] = {}
    for day in set(todays.values()):  # one query per local day in use (one, when all sites share a zone)
        day_visits, _ = live_day(conn, day, only)
        visits.update({site: n for site, n in day_visits.items() if todays.get(site) == day})
    out = []
    for s in listed:
        occ, cap, rooms, updated = occupancy.get(s["site"], (0, 0, 0, None))
        online, total = devices.get(s["site"], (0, 0))
        out.append({
            "site": s["site"], "name": s["name"], "url": s["url"], "occupancy": occ, "capacity": cap,
            "rooms": rooms, "entries_today": visits.get(s["site"], 0), "devices_online": online,
            "devices_total": total, "alerts": int(alerts.get(s["site"], 0)),
            "updated": updated.isoformat() if updated else None,
        })  # fmt: skip
    conn.commit()
    return out


def sort_sites(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    if key not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}")
    # Ties keep the site id order, whichever way the column is sorted.
    ordered = sorted(rows, key=lambda r: r["site"])
    return sorted(ordered, key=lambda r: r[key], reverse=descending)


def site_rooms(conn, site: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT room, coalesce(name, room), occupancy, capacity, level, entries_today, updated FROM live_rooms"
        " WHERE site = %s ORDER BY room",
        (site,),
    ).fetchall()
    conn.commit()
    return [
        {"room": r, "name": n, "occupancy": o, "capacity": c, "level": lv, "entries_today": e,
         "updated": u.isoformat()}
        for r, n, o, c, lv, e, u in rows
    ]  # fmt: skip


def site_devices(conn, site: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT device, online, updated FROM live_devices WHERE site = %s ORDER BY device", (site,)
    ).fetchall()
    conn.commit()
    return [{"device": d, "online": o, "updated": u.isoformat()} for d, o, u in rows]


# --- reports ---------------------------------------------------------------------------------------------


def report(conn, kind: str, start: dt.date, end: dt.date, now: dt.datetime, only: str | None = None):
    """Visits per site and per day, and room entries and exits per site, over [start, end]: the stored daily
    rollups, and today (each site's own local today) counted now from its raw events."""
    listed = [s for s in sites(conn) if only is None or s["site"] == only]
    ids = [s["site"] for s in listed]
    visits: dict[str, int] = defaultdict(int)
    days_with_data: dict[str, set] = defaultdict(set)
    per_day: dict[dt.date, int] = defaultdict(int)
    rooms: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0])
    todays = {s["site"]: site_today(s, now) for s in listed}
    for site, day, n in conn.execute(
        "SELECT site, day, visits FROM daily_sites WHERE day BETWEEN %s AND %s AND site = ANY(%s)",
        (start, end, ids),
    ):
        if day != todays[site]:  # today comes from the raw events below, even if it was rolled up early
            visits[site] += n
            per_day[day] += n
            days_with_data[site].add(day)
    for site, day, room, entries, exits in conn.execute(
        "SELECT site, day, room, entries, exits FROM daily_rooms WHERE day BETWEEN %s AND %s AND site = ANY(%s)",
        (start, end, ids),
    ):
        if day != todays[site]:
            rooms[(site, room)][0] += entries
            rooms[(site, room)][1] += exits
    for day in {d for d in todays.values() if start <= d <= end}:
        day_visits, day_rooms = live_day(conn, day, only)
        for site, n in day_visits.items():
            if todays.get(site) == day:
                visits[site] += n
                per_day[day] += n
                days_with_data[site].add(day)
        for (site, room), (entries, exits) in day_rooms.items():
            if todays.get(site) == day and room != OUTDOORS:
                rooms[(site, room)][0] += entries
                rooms[(site, room)][1] += exits
    names = {(s, r): n for s, r, n in conn.execute("SELECT site, room, coalesce(name, room) FROM live_rooms")}
    conn.commit()
    site_rows = []
    for s in listed:
        n_days = len(days_with_data[s["site"]])
        site_rows.append({
            "site": s["site"], "name": s["name"], "visits": visits[s["site"]], "days": n_days,
            "average_daily_visits": round(visits[s["site"]] / n_days, 1) if n_days else 0,
        })  # fmt: skip
    total = sum(r["visits"] for r in site_rows)
    return {
        "period": {"kind": kind, "start": start.isoformat(), "end": end.isoformat()},
        "sites": site_rows,
        "total": {"sites": len(site_rows), "visits": total},
        "days": [
            {"date": d.isoformat(), "visits": per_day.get(d, 0)}
            for d in (start + dt.timedelta(days=k) for k in range((end - start).days + 1))
        ],
        "rooms": [
            {"site": site, "room": room, "name": names.get((site, room), room), "entries": e, "exits": x}
            for (site, room), (e, x) in sorted(rooms.items())
        ],
    }
