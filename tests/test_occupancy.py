"""Occupancy: pure functions of timestamped inputs."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from footfall.clock import day_bounds, local_day
from footfall.server.occupancy import RoomCounts, apply, current, moves, replay_day, set_occupancy
from footfall.site import Door

DAY = dt.date(2026, 11, 28)
T0 = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
MAIN = Door("main", "door-main", "hall", "outdoors")
BAR = Door("bar", "door-bar", "book-bar", "hall")


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_door_moves_people_between_its_spaces():
    assert moves(MAIN, "in", 2) == [("hall", 2)]
    assert moves(BAR, "in", 1) == [("book-bar", 1), ("hall", -1)]
    assert moves(BAR, "out", 3) == [("hall", 3), ("book-bar", -3)]


def test_never_below_zero_but_raw_net_and_correction_kept():
    counts = apply(RoomCounts(DAY), 2, at(0))
    counts = apply(counts, -5, at(1))
    assert (counts.occupancy, counts.raw_net, counts.corrected, counts.entries, counts.exits) == (
        0,
        -3,
        3,
        2,
        5,
    )
    assert (counts.peak, counts.peak_at) == (2, at(0))


def test_staff_correction_and_daily_reset():
    counts = set_occupancy(apply(RoomCounts(DAY), 5, at(0)), 3, at(2))
    assert (counts.occupancy, counts.corrected, counts.peak) == (3, -2, 5)
    assert current(counts, DAY) is counts
    assert current(counts, DAY + dt.timedelta(days=1)) == RoomCounts(DAY + dt.timedelta(days=1))


def test_replay_is_independent_of_arrival_order():
    crossings = [
        (at(0), "door-main", "in", 3),
        (at(5), "door-bar", "in", 2),
        (at(9), "door-bar", "out", 1),
        (at(30), "door-main", "out", 2),
        (at(1), "door-unknown", "in", 1),
    ]
    doors = {"door-main": MAIN, "door-bar": BAR}
    forward = replay_day(crossings, doors, DAY)
    assert replay_day(list(reversed(crossings)), doors, DAY) == forward
    assert (forward["hall"].entries, forward["hall"].exits, forward["hall"].peak) == (4, 4, 3)
    assert (forward["book-bar"].occupancy, forward["book-bar"].peak_at) == (1, at(5))


def test_business_day_with_a_late_start():
    tz = ZoneInfo("Asia/Shanghai")
    starts = dt.time(4, 0)
    # 02:30 local on the 29th still belongs to the 28th's business day; 04:00 starts the 29th.
    assert local_day(dt.datetime(2026, 11, 28, 18, 30, tzinfo=dt.UTC), tz, starts) == DAY
    assert local_day(dt.datetime(2026, 11, 28, 20, 0, tzinfo=dt.UTC), tz, starts) == DAY + dt.timedelta(
        days=1
    )
    start, end = day_bounds(DAY, tz, starts)
    assert (start.hour, end - start) == (20, dt.timedelta(days=1))
