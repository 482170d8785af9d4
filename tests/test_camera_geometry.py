"""Counting line geometry, hysteresis band and the pure tracker, plus camera health."""

from __future__ import annotations

import numpy as np
import pytest

from footfall.counter.camera.geometry import BandSide, CountingLine, parse_line
from footfall.counter.camera.health import CameraHealth
from footfall.counter.camera.tracker import Blob, Tracker


def test_horizontal_line_directions_and_sides():
    line = CountingLine(0, 120, 319, 120)
    assert line.horizontal
    assert line.signed_distance(10, 150) == pytest.approx(30)
    assert line.signed_distance(10, 100) == pytest.approx(-20)
    assert line.direction_name(1) == "down" and line.direction_name(-1) == "up"
    assert line.side_sign("down") == line.side_sign("bottom") == 1
    assert line.side_sign("UP") == line.side_sign("top") == -1
    # The same line drawn the other way round has the same sides.
    assert CountingLine(319, 120, 0, 120).signed_distance(10, 150) == pytest.approx(30)


def test_vertical_and_slanted_lines():
    line = CountingLine(160, 240, 170, 0)
    assert not line.horizontal
    assert line.signed_distance(200, 120) > 0
    assert line.direction_name(1) == "L->R" and line.direction_name(-1) == "R->L"
    assert line.side_sign("right") == line.side_sign("L->R") == 1
    with pytest.raises(ValueError, match="L->R"):
        line.side_sign("down")
    slanted = CountingLine(0, 0, 100, 60)
    assert slanted.horizontal and slanted.signed_distance(0, 50) > 0


def test_segment_extent():
    line = CountingLine(100, 50, 200, 50)
    assert line.within_segment(150, 80)
    assert not line.within_segment(20, 50)
    assert line.within_segment(210, 50, margin=20)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "1,2,1,2", "1,2,3,inf", ""])
def test_parse_line_rejects_bad_input(text):
    with pytest.raises(ValueError):
        parse_line(text)


def test_parse_line():
    assert parse_line(" 0, 120,319 ,120") == (0.0, 120.0, 319.0, 120.0)


def test_band_side():
    band = BandSide(10)
    assert [band(d) for d in (-11, -10, 0, 10, 11)] == [-1, 0, 0, 0, 1]


def blob(x, y, r=20.0):
    pts = np.array(
        [(x + dx, y + dy) for dx in range(-int(r), int(r) + 1, 4) for dy in range(-int(r), int(r) + 1, 4)]
    )
    return Blob(x, y, np.pi * r * r, (x - r, y - r, x + r, y + r), pts.astype(float))


def feed(tracker, ys, x=100.0, start=0):
    found = []
    for i, y in enumerate(ys):
        found += tracker.update([blob(x, y)] if y is not None else [], start + i, (start + i) / 15)
    return found


def test_tracker_counts_a_crossing_once_at_the_line_frame():
    tracker = Tracker(CountingLine(0, 100, 200, 100), person_size=40)
    found = feed(tracker, [40 + 8 * i for i in range(16)])  # 40 .. 160, on the line between i=7 and 8
    assert [(c.frame_index, c.sign) for c in found] == [(8, 1)]


def test_tracker_u_turn_and_jitter_on_the_line_count_nothing():
    tracker = Tracker(CountingLine(0, 100, 200, 100), person_size=40)
    ys = [40, 50, 60, 70, 80, 90, 98, 104, 96, 106, 99, 103, 95, 85, 70, 55, 40]
    assert feed(tracker, ys) == []


def test_tracker_survives_a_short_occlusion():
    tracker = Tracker(CountingLine(0, 100, 200, 100), person_size=40)
    ys = [40, 48, 56, 64, 72, 80, None, None, None, 112, 120, 128, 136]
    found = feed(tracker, ys)
    assert [c.sign for c in found] == [1]
    assert 85 <= 8 * found[0].frame_index + 40 <= 115


def test_tracker_two_tracks_share_a_merged_blob():
    """Two people passing with a small sideways offset merge into one blob for several frames."""
    line = CountingLine(0, 100, 200, 100)
    tracker = Tracker(line, person_size=40)
    found = []
    merged_frames = 0
    for i in range(25):
        a, b = blob(88, 20 + 7 * i), blob(112, 180 - 7 * i)
        if abs(a.cy - b.cy) < 40:  # touching: one blob
            merged_frames += 1
            pts = np.vstack([a.points, b.points])
            box = (
                min(a.bbox[0], b.bbox[0]),
                min(a.bbox[1], b.bbox[1]),
                max(a.bbox[2], b.bbox[2]),
                max(a.bbox[3], b.bbox[3]),
            )
            blobs = [Blob(pts[:, 0].mean(), pts[:, 1].mean(), a.area + b.area, box, pts)]
        else:
            blobs = [a, b]
        found += tracker.update(blobs, i, i / 15)
    assert merged_frames >= 5
    assert sorted(c.sign for c in found) == [-1, 1]
    assert len({c.track_id for c in found}) == 2


def test_health_states():
    health = CameraHealth(no_frames_after_s=5, frozen_after_s=10, dark_after_s=10)
    rng = np.random.default_rng(0)

    def live():
        return rng.integers(60, 200, (48, 64, 3), dtype=np.uint8)

    assert health.feed(live(), 0.0) == "ok"
    assert health.feed(None, 3.0) == "ok"
    assert health.feed(None, 6.0) == "no_frames"
    assert health.feed(live(), 7.0) == "ok"
    still = live()
    assert all(health.feed(still.copy(), 8.0 + i) == "ok" for i in range(9))
    assert health.feed(still.copy(), 19.0) == "frozen"
    assert health.feed(live(), 20.0) == "ok"
    dark = lambda: rng.integers(0, 6, (48, 64, 3), dtype=np.uint8)  # noqa: E731
    assert health.feed(dark(), 21.0) == "ok"
    assert health.feed(dark(), 32.0) == "dark"
    assert health.feed(live(), 33.0) == "ok"


def test_health_with_no_frame_ever():
    health = CameraHealth(no_frames_after_s=5)
    assert health.feed(None, 100.0) == "ok"
    assert health.feed(None, 106.0) == "no_frames"
