"""The daily rollup (pure), its store layer (watermark, dirty days, retention), the report API, exports and CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import random

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from footfall.clock import format_ts
from footfall.server import reports
from footfall.server.occupancy import replay_day
from footfall.server.reports import apply_retention, mark_dirty, rollup_pending
from footfall.server.reports_cli import report as report_cli
from footfall.server.rollup import rollup_day
from footfall.server.web import create_app
from footfall.server.web.auth import create_token
from tests.conftest import EXAMPLE_SITE

DAY = dt.date(2026, 11, 20)  # a Friday; the business day runs 04:00 - 04:00 Beijing time (20:00 - 20:00 UTC)
NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)


def at(hour: float, day: dt.date = DAY) -> dt.datetime:
    """`hour` o'clock Beijing time on `day` (hours past 24 run into the next calendar day)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=hour - 8)


def row(device, id_, ts, **fields):
    base = dict.fromkeys(("door", "direction", "count", "purpose", "adults", "children", "activity", "member",
                          "room", "clock_flag"))  # fmt: skip
    local = ts + dt.timedelta(hours=8) - dt.timedelta(hours=4)
    return {**base, "device": device, "id": id_, "seq": 0, "type": "crossing", "ts": format_ts(ts),
            "device_ts": format_ts(ts), "received_at": format_ts(ts), "day": local.date().isoformat(), **fields}  # fmt: skip


def crossing_row(device, id_, ts, direction="in", count=1):
    return row(device, id_, ts, direction=direction, count=count)


def checkin_row(id_, ts, purpose="class", adults=1, children=0, activity=None, member=None):
    return row("kiosk-hall", id_, ts, type="checkin", purpose=purpose, adults=adults, children=children,
               activity=activity, member=member)  # fmt: skip


def insert(store, rows):
    with store.transaction() as tx:
        for r in rows:
            tx.insert_event(r)


def visit_rows(day=DAY, prefix="a"):
    """Three people: two to the book bar 09:00-10:00, one only in the hall; one leaves after midnight."""
    return [
        crossing_row("door-main", f"{prefix}1", at(9.0, day), "in", 2),
        crossing_row("door-book-bar", f"{prefix}2", at(9.1, day), "in", 2),
        crossing_row("door-book-bar", f"{prefix}3", at(10.1, day), "out", 2),
        crossing_row("door-main", f"{prefix}4", at(10.2, day), "out", 2),
        crossing_row("door-main", f"{prefix}5", at(23.5, day), "in", 1),
        crossing_row(
            "door-main", f"{prefix}6", at(24.5, day), "out", 1
        ),  # 00:30: still the same business day
        checkin_row(f"{prefix}7", at(9.02, day), "reading", 1, 1, member="m0001"),
    ]


def test_rollup_of_a_day(site):
    rows = visit_rows()
    crossings = [(r["ts"], r["device"], r["direction"], r["count"]) for r in rows if r["type"] == "crossing"]
    checkins = [r for r in rows if r["type"] == "checkin"]
    items = [{"id": "read-1", "room": "book-bar", "date": DAY.isoformat(), "start": "09:15", "end": "10:00"}]
    r = rollup_day(site, DAY, crossings, checkins, items)
    assert r.visits == 3 and r.visits_hourly[9] == 2 and r.visits_hourly[23] == 1
    bar, hall = r.rooms["book-bar"], r.rooms["hall"]
    assert (bar.entries, bar.exits, bar.peak, bar.peak_at) == (2, 2, 2, format_ts(at(9.1)))
    assert bar.occupied_ms == 3_600_000 and bar.hourly[9] == 2
    assert (hall.entries, hall.exits, hall.peak) == (5, 5, 2)
    assert hall.occupied_ms == round((0.1 + 0.1 + 1.0) * 3_600_000)  # empty while both sit in the bar
    assert (r.checkins, r.adults, r.children, r.identified, r.anonymous) == (1, 1, 1, 1, 0)
    assert r.by_purpose["reading"] == 1 and r.people_by_purpose["reading"] == 2
    assert r.activities["read-1"].door_entries == 2  # 09:06 is inside the window that opens at 09:00


def test_rollup_agrees_with_replay_and_ignores_order(site):
    rng = random.Random(3)
    devices = sorted(site.doors_by_device)
    crossings = [(format_ts(at(8 + rng.random() * 12)), rng.choice(devices), rng.choice(("in", "out")),
                  rng.randint(1, 3)) for _ in range(2000)]  # fmt: skip
    crossings += crossings[:50]  # identical instants and devices
    first = rollup_day(site, DAY, crossings, [])
    shuffled = crossings[:]
    rng.shuffle(shuffled)
    assert rollup_day(site, DAY, shuffled, []) == first
    parsed = [(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")), d, di, n) for ts, d, di, n in crossings]
    replay = replay_day(sorted(parsed), site.doors_by_device, DAY)
    for room, counts in replay.items():
        mine = first.rooms[room]
        assert (mine.entries, mine.exits, mine.peak) == (counts.entries, counts.exits, counts.peak)
        assert mine.peak_at == format_ts(counts.peak_at)


def test_pending_days_watermark_dirty_days_and_late_events(site, store):
    insert(store, visit_rows())
    assert rollup_pending(site, store, at(12)) == []  # today is not finished
    assert rollup_pending(site, store, NOW) == [DAY]
    assert rollup_pending(site, store, NOW) == []
    insert(store, [crossing_row("door-main", "late", at(15), "in", 4)])  # arrives a week late, unannounced
    assert rollup_pending(site, store, NOW) == [DAY]
    assert store.conn.execute("SELECT visits FROM daily_summary").fetchone()[0] == 7
    insert(store, [crossing_row("door-main", "late", at(15), "in", 4)])  # the same event again: ignored
    assert rollup_pending(site, store, NOW) == []
    with store.transaction() as tx:
        mark_dirty(tx, DAY)
    assert rollup_pending(site, store, NOW) == [DAY]


def test_retention_keeps_daily_counts_and_identified_totals(site, store):
    insert(store, visit_rows())
    rollup_pending(site, store, NOW)
    short = dataclasses.replace(site, server=dataclasses.replace(site.server, identified_retention_days=3,
                                              raw_retention_days=5))  # fmt: skip
    assert apply_retention(short, store, NOW) == {"members_removed": 1, "events_deleted": 7}
    assert store.count("events") == 0
    rep = reports.report(short, store, "daily", DAY, NOW)
    assert rep["headline"]["visits"] == 3 and rep["checkins"]["identified"] == 1
    insert(store, [crossing_row("door-main", "very-late", at(15), "in", 4)])
    rollup_pending(short, store, NOW)  # older than the raw retention: the kept counts are not replaced
    assert reports.report(short, store, "daily", DAY, NOW)["headline"]["visits"] == 3


def test_identified_count_survives_a_recount_after_member_purge(site, store):
    insert(store, visit_rows())
    rollup_pending(site, store, NOW)
    short = dataclasses.replace(site, server=dataclasses.replace(site.server, identified_retention_days=3))
    apply_retention(short, store, NOW)
    assert store.count("events", "member IS NOT NULL") == 0
    with store.transaction() as tx:
        mark_dirty(tx, DAY)
    rollup_pending(short, store, NOW)
    assert store.conn.execute("SELECT identified FROM daily_summary").fetchone()[0] == 1


@pytest.fixture
def client(site, store):
    app = create_app(site, store, None, {"TESTING": True, "FOOTFALL_NOW": lambda: NOW})
    return app.test_client()


def test_report_api_errors_and_xlsx_cell_by_cell(site, store, client):
    insert(store, visit_rows() + visit_rows(DAY + dt.timedelta(days=2), "b"))
    headers = {"Authorization": f"Bearer {create_token(store, 'viewer', 'v')}"}
    assert client.get("/api/v1/reports/monthly?month=2026-11").status_code == 401
    assert client.get("/api/v1/reports/monthly?month=11-2026", headers=headers).status_code == 400
    assert client.get("/api/v1/reports/hourly", headers=headers).status_code == 404
    rep = client.get("/api/v1/reports/monthly?month=2026-11", headers=headers).get_json()
    assert rep["headline"]["visits"] == 6 and rep["headline"]["days_open"] == 2
    assert rep["headline"]["average_daily_visits"] == 3.0
    xlsx = client.get("/api/v1/reports/monthly.xlsx?month=2026-11&lang=en", headers=headers)
    assert xlsx.status_code == 200 and "monthly-2026-11.xlsx" in xlsx.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(xlsx.data))
    assert book.sheetnames == ["Summary", "Days", "Room use", "Hours", "Purposes", "Activities and classes"]
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Visits (service volume)"] == rep["headline"]["visits"]
    assert summary["Average daily visits"] == rep["headline"]["average_daily_visits"]
    days = list(book["Days"].iter_rows(min_row=2, values_only=True))
    assert days == [(d["date"], d["visits"], d["checkins"], d["people"]) for d in rep["days"]]
    rooms = list(book["Room use"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[3], r[4], r[5], r[7], r[8]) for r in rooms] == [
        (r["room"], r["entries"], r["exits"], r["peak"], r["utilisation"], r["occupied_hours"])
        for r in rep["rooms"]
    ]
    assert [r[1] for r in book["Hours"].iter_rows(min_row=2, values_only=True)] == rep["hours"]
    csv = client.get("/api/v1/reports/monthly.csv?month=2026-11", headers=headers).get_data(as_text=True)
    assert csv.startswith("\ufeff概要") and "服务人次,6" in csv


def test_cli_prints_and_exports_the_same_figures(site, store, tmp_path):
    insert(store, visit_rows())
    site_file = tmp_path / "site.toml"
    site_file.write_text(
        EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{site.data_dir}"')
    )
    out_csv, out_xlsx = tmp_path / "r.csv", tmp_path / "r.xlsx"
    result = CliRunner().invoke(report_cli, ["daily", "-c", str(site_file), "--date", DAY.isoformat(),
                                             "--csv", str(out_csv), "--xlsx", str(out_xlsx), "--lang", "en"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Visits (service volume)\t3" in result.output
    assert "Visits (service volume),3" in out_csv.read_text(encoding="utf-8-sig")
    assert load_workbook(out_xlsx)["Summary"]["B2"].value == 3
    bad = CliRunner().invoke(report_cli, ["monthly", "-c", str(site_file), "--month", "2026/11"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
    assert CliRunner().invoke(report_cli, ["--help"]).exit_code == 0
