"""A year at the reference center through `Ingestor.process`, then the rollup: every report figure equals the
ground truth computed by the generator (tests/yearsim.py); late and repeated deliveries change nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from footfall.server.reports import report, rollup_pending
from footfall.server.rollup import ACTIVITY_KINDS, CLASS_KINDS
from footfall.server.schedule import create_item
from footfall.server.store import SqliteStore
from tests.conftest import example_site
from tests.yearsim import YEAR, deliveries, feed, generate

NOW = dt.datetime(YEAR + 1, 1, 10, 2, 0, tzinfo=dt.UTC)


def make_site(path):
    return example_site(path)


def load_year(site, year, delivered) -> SqliteStore:
    store = SqliteStore(site.db_path)
    for item in year.items:
        create_item(store, site, item, NOW)
    store.recounted = feed(site, store, delivered)
    rollup_pending(site, store, NOW)
    return store


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    return generate(make_site(tmp_path_factory.mktemp("gen")))


@pytest.fixture(scope="module")
def in_order(year, tmp_path_factory):
    site = make_site(tmp_path_factory.mktemp("in-order"))
    return site, load_year(site, year, deliveries(year))


def test_the_simulated_year_looks_like_the_reference_center(year):
    open_days = year.open_days
    visits = sum(year.days[d]["visits"] for d in open_days)
    assert 280 <= len(open_days) <= 310
    assert 290 <= visits / len(open_days) <= 320
    kinds = [i["kind"] for i in year.items]
    assert (kinds.count("workshop"), kinds.count("themed"), kinds.count("joint")) == (55, 95, 20)
    assert 90_000 < len(year.events) < 200_000


def test_every_stored_day_equals_the_truth(year, in_order):
    site, store = in_order
    summary = {r["day"]: dict(r) for r in store.conn.execute("SELECT * FROM daily_summary")}
    counts = {(r["day"], r["room"]): dict(r) for r in store.conn.execute("SELECT * FROM daily_counts")}
    assert sorted(summary) == [d.isoformat() for d in sorted(year.days)]  # closed days: no events, no row
    for day, truth in year.days.items():
        row = summary[day.isoformat()]
        for key in ("visits", "checkins", "adults", "children", "identified"):
            assert row[key] == truth[key], (day, key)
        assert json.loads(row["visits_hourly"]) == truth["visits_hourly"], day
        assert {p: n for p, n in json.loads(row["by_purpose"]).items() if n} == truth["by_purpose"], day
        assert {p: n for p, n in json.loads(row["people_by_purpose"]).items() if n} == truth[
            "people_by_purpose"
        ]
        for room, t in truth["rooms"].items():
            got = counts[(day.isoformat(), room)]
            assert {**got, "hourly": json.loads(got["hourly"])} == {**t, "day": day.isoformat(), "room": room}


def truth_figures(year) -> dict:
    days = [year.days[d] for d in sorted(year.days)]
    open_days = [t for t in days if t["visits"]]
    visits = sum(t["visits"] for t in days)
    rooms = {r.id: sum(t["rooms"][r.id]["entries"] for t in days) for r in year.site.rooms}
    hours = [sum(t["visits_hourly"][h] for t in days) for h in range(24)]

    def held(kinds):
        items = [i for i in year.items if i["kind"] in kinds]
        people = sum(year.item_truth[i["id"]]["adults"] + year.item_truth[i["id"]]["children"] for i in items)
        return len(items), people

    return {
        "days": 365,
        "days_open": len(open_days),
        "visits": visits,
        "average_daily_visits": round(visits / len(open_days), 1),
        "checkins": sum(t["checkins"] for t in days),
        "people": sum(t["adults"] + t["children"] for t in days),
        "checkin_rate": round(sum(t["checkins"] for t in days) / visits, 3),
        "activities_held": held(ACTIVITY_KINDS)[0],
        "activity_participants": held(ACTIVITY_KINDS)[1],
        "classes_held": held(CLASS_KINDS)[0],
        "class_attendance": held(CLASS_KINDS)[1],
        "busiest_room": max(rooms, key=lambda r: rooms[r]),
        "busiest_hour": max(range(24), key=lambda h: hours[h]),
    }


def test_annual_report_equals_the_truth(year, in_order):
    site, store = in_order
    rep = report(site, store, "annual", dt.date(YEAR, 6, 1), NOW)
    assert rep["headline"] == truth_figures(year)
    days = sorted(year.days)
    for row in rep["rooms"]:
        truths = [year.days[d]["rooms"][row["room"]] for d in days]
        assert row["entries"] == sum(t["entries"] for t in truths)
        assert row["exits"] == sum(t["exits"] for t in truths)
        assert row["peak"] == max(t["peak"] for t in truths)
        assert row["occupied_hours"] == round(sum(t["occupied_ms"] for t in truths) / 3_600_000, 2)
        assert row["hourly"] == [sum(t["hourly"][h] for t in truths) for h in range(24)]
    assert rep["hours"] == [sum(year.days[d]["visits_hourly"][h] for d in days) for h in range(24)]
    assert len(rep["days"]) == 365 and sum(d["visits"] for d in rep["days"]) == rep["headline"]["visits"]
    assert len(rep["activities"]) == len(year.items)
    for a in rep["activities"]:
        t = year.item_truth[a["id"]]
        assert (a["checkins"], a["adults"], a["children"], a["door_entries"]) == (
            t["checkins"], t["adults"], t["children"], t["door_entries"],
        )  # fmt: skip
        assert a["door_entries"] >= a["people"] > 0
    workshops = rep["kinds"]["workshop"]
    assert workshops["held"] == 55 and workshops["participants"] > 55 * 10


def test_month_and_week_reports_add_up_to_the_year(year, in_order):
    site, store = in_order
    annual = report(site, store, "annual", dt.date(YEAR, 1, 1), NOW)
    months = [report(site, store, "monthly", dt.date(YEAR, m, 1), NOW, refresh=False) for m in range(1, 13)]
    assert sum(m["headline"]["visits"] for m in months) == annual["headline"]["visits"]
    assert sum(m["headline"]["days_open"] for m in months) == annual["headline"]["days_open"]
    assert sum(m["headline"]["class_attendance"] for m in months) == annual["headline"]["class_attendance"]
    day = year.open_days[100]
    daily = report(site, store, "daily", day, NOW, refresh=False)
    assert daily["headline"]["visits"] == year.days[day]["visits"]
    assert [r["peak_at"] for r in daily["rooms"]] == [
        year.days[day]["rooms"][r.id]["peak_at"] for r in site.rooms
    ]
    week = report(site, store, "weekly", day, NOW, refresh=False)
    monday = day - dt.timedelta(days=day.weekday())
    in_week = [monday + dt.timedelta(days=n) for n in range(7)]
    assert week["headline"]["visits"] == sum(year.days[d]["visits"] for d in in_week if d in year.days)


def test_late_and_repeated_deliveries_give_identical_reports(year, in_order, tmp_path_factory):
    site, store = in_order
    late_site = make_site(tmp_path_factory.mktemp("late"))
    delivered = deliveries(year, late=0.05, twice=0.05, seed=9)
    assert len(delivered) > len(year.events) * 1.04
    late_store = load_year(late_site, year, delivered)
    assert late_store.recounted > store.recounted + 100  # days recounted because late events re-opened them
    assert late_store.count("events") == store.count("events") == len(year.events)
    for kind, anchor in [("annual", dt.date(YEAR, 1, 1))] + [
        ("monthly", dt.date(YEAR, m, 1)) for m in (1, 6, 12)
    ]:
        assert report(late_site, late_store, kind, anchor, NOW) == report(site, store, kind, anchor, NOW), (
            kind
        )
    for table in ("daily_summary", "daily_counts", "daily_activity"):
        query = f"SELECT * FROM {table} ORDER BY 1, 2"
        strip = lambda r: {k: r[k] for k in r.keys() if k != "rolled_at"}  # noqa: E731, SIM118
        assert [strip(r) for r in late_store.conn.execute(query)] == [
            strip(r) for r in store.conn.execute(query)
        ]
