"""The tracker's pure core (counter/camera/tracker.py): blobs in, crossings out, no image involved."""

from __future__ import annotations

import math

from footfall.counter.camera.geometry import CountingLine
from footfall.counter.camera.tracker import Blob, Track, Tracker

LINE = CountingLine(0, 120, 319, 120)
PS = 40.0  # person size, px


def disc(x: float, y: float, d: float = PS) -> Blob:
    return Blob(x, y, math.pi / 4 * d * d, (x - d / 2, y - d / 2, x + d / 2, y + d / 2))


def test_the_track_that_followed_its_blob_longest_keeps_it():
    # Track 1 lost its person, coasted, and came down onto the blob of the person behind, whom track 2 has
    # followed all along: track 2 stays (it has still to cross), track 1 goes, though it is the older one.
    tracker = Tracker(LINE, PS)
    strayed = Track(1, 100, 130, 0.0, 1.0, 10, blob=0, home=-1, streak=2)
    follower = Track(2, 102, 132, 0.5, 1.0, 10, blob=0, home=1, streak=20)
    assert [tr.id for tr in tracker._dedupe([strayed, follower])] == [2]


def test_on_a_tie_the_older_track_stays():
    tracker = Tracker(LINE, PS)
    a = Track(1, 100, 130, 0.0, 1.0, 10, blob=0, streak=5)
    b = Track(2, 102, 132, 0.5, 1.0, 10, blob=0, streak=5)
    assert [tr.id for tr in tracker._dedupe([b, a])] == [1]


def test_a_walker_is_counted_once_and_a_u_turn_not_at_all():
    tracker = Tracker(LINE, PS)
    found = []
    for i, y in enumerate(range(40, 220, 6)):  # straight down across the line
        found += tracker.update([disc(160, y)], i, i / 15)
    assert [(c.sign, c.count) for c in found] == [(1, 1)]
    tracker = Tracker(LINE, PS)
    found = []
    path = list(range(40, 126, 6)) + list(range(126, 40, -6))  # to just past the line and back
    for i, y in enumerate(path):
        found += tracker.update([disc(160, y)], i, i / 15)
    assert found == []


def test_a_streak_breaks_when_the_track_coasts():
    tracker = Tracker(LINE, PS)
    for i, y in enumerate(range(40, 70, 6)):
        tracker.update([disc(160, y)], i, i / 15)
    (tr,) = tracker.tracks
    assert tr.streak == 5
    tracker.update([], 5, 5 / 15)
    assert tracker.tracks[0].streak == 0
