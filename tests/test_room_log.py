"""RoomLog: live ingest's incremental count of a room's day equals `replay` of that day, however it arrives."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.clock import format_ts
from footfall.server.occupancy import RoomLog, replay
from footfall.site import Door

DAY = dt.date(2026, 11, 28)
T0 = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
DOORS = {
    "door-main": Door("main", "door-main", "hall", "outdoors"),
    "door-bar": Door("bar", "door-bar", "book-bar", "hall"),
    "door-side": Door("side", "door-side", "hall", "outdoors"),
}

crossing = st.tuples(
    st.integers(0, 600), st.sampled_from(sorted(DOORS)), st.sampled_from(["in", "out"]), st.integers(1, 3)
)
correction = st.tuples(st.integers(0, 600), st.sampled_from(["hall", "book-bar"]), st.integers(0, 9))


def ts(second: int) -> str:
    return format_ts(T0 + dt.timedelta(seconds=second))


@settings(max_examples=150, deadline=None)
@given(
    crossings=st.lists(crossing, max_size=120),
    corrections=st.lists(correction, max_size=4),
    batches=st.integers(1, 8),
    every=st.sampled_from([2, 5, 64]),
    seed=st.integers(0, 2**16),
)
def test_batches_in_any_arrival_order_count_as_replay(crossings, corrections, batches, every, seed):
    events = [(ts(s), device, direction, count) for s, device, direction, count in crossings]
    fixes = [(ts(s), room, value) for s, room, value in corrections]
    arrival = [(e, 0) for e in events] + [(f, 1) for f in fixes]
    random.Random(seed).shuffle(arrival)  # a door's backlog arrives late, interleaved with live events
    expected = replay(events, DOORS, DAY, fixes)
    for room in ("hall", "book-bar"):
        log = RoomLog(room, DAY, DOORS, every=every)
        size = max(1, len(arrival) // batches)
        for start in range(0, len(arrival), size):
            items = []
            for thing, kind in arrival[start : start + size]:
                item = (thing[0], 0, *thing[1:]) if kind == 0 else (thing[0], 1, *thing[1:])
                if log.touches(item):
                    items.append(item)
            log.add(items)
        want = expected.get(room)
        if want is None:
            assert (log.counts.entries, log.counts.exits, log.counts.occupancy) == (0, 0, 0)
        else:
            assert log.counts == want


def test_of_day_counts_only_its_room():
    crossings = [(ts(0), "door-main", "in", 4), (ts(5), "door-bar", "in", 1), (ts(9), "door-side", "out", 1)]
    hall = RoomLog.of_day("hall", DAY, DOORS, crossings, [(ts(7), "book-bar", 5)])
    assert (hall.counts.entries, hall.counts.exits, hall.counts.occupancy) == (4, 2, 2)
    bar = RoomLog.of_day("book-bar", DAY, DOORS, crossings, [(ts(7), "book-bar", 5)])
    assert (bar.counts.entries, bar.counts.occupancy, bar.counts.corrected) == (1, 5, 4)
    assert bar.latest == ts(7)


def test_a_late_exit_is_absorbed_in_its_place_not_on_top():
    log = RoomLog("hall", DAY, DOORS, every=2)
    log.add([(ts(60), 0, "door-main", "in", 3)])
    # An exit at 0 s from an empty hall arrives after the 60 s entry: it is absorbed, so the three stay.
    counts = log.add([(ts(0), 0, "door-side", "out", 1)])
    assert (counts.occupancy, counts.corrected, counts.exits, counts.peak) == (3, 1, 1, 3)
