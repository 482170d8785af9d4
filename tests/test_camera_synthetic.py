"""Camera counter on synthetic clips with known crossings (numpy-drawn people over a textured, noisy floor)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from camera_synth import H, W, Walker, crossings, render, run_counter, walk  # noqa: E402

QUIET = 30  # frames of empty floor first, for the background model


def detected(found):
    return [(c.frame_index, c.geometric) for c in found for _ in range(c.count)]


def assert_matches(found, expected, tolerance=3):
    got = sorted(detected(found))
    assert len(got) == len(expected), f"expected {expected}, got {got}"
    for (f_got, d_got), (f_exp, d_exp) in zip(got, sorted(expected), strict=True):
        assert d_got == d_exp and abs(f_got - f_exp) <= tolerance, f"expected {expected}, got {got}"


@pytest.mark.parametrize(
    "walker",
    [
        walk(160, -60, 160, 300, QUIET),
        walk(200, 300, 200, -60, QUIET),
        walk(50, -60, 60, 300, QUIET, colour=(120, 110, 100)),  # on the dark side of the frame
        walk(150, -60, 170, 300, QUIET, stripes=True),  # striped clothing
        walk(240, 300, 120, -60, QUIET, speed=10.0),  # diagonal and fast
    ],
    ids=["down", "up", "dark-side", "stripes", "diagonal-fast"],
)
def test_single_walker_counts_once(walker):
    frames = render([walker], 120)
    found, counter = run_counter(frames)
    assert_matches(found, crossings([walker], 120))
    assert sum(counter.counts.values()) == 1


def test_in_side_names_the_direction():
    walker = walk(160, -60, 160, 300, QUIET)
    frames = render([walker], 120)
    found, counter = run_counter(frames, in_side="down")
    assert [(c.direction, c.geometric) for c in found] == [("in", "down")]
    found, counter = run_counter(frames, in_side="top")
    assert [(c.direction, c.geometric) for c in found] == [("out", "down")]
    assert counter.counts == {"in": 0, "out": 1}


@pytest.mark.parametrize("gap", [60, 30], ids=["apart", "brushing"])
def test_two_people_passing_each_other(gap):
    walkers = [
        walk(160 - gap / 2, -60, 160 - gap / 2, 300, QUIET),
        walk(160 + gap / 2, 300, 160 + gap / 2, -60, QUIET),
    ]
    frames = render(walkers, 120)
    found, _ = run_counter(frames)
    assert_matches(found, crossings(walkers, 120))


def test_two_people_side_by_side():
    walkers = [walk(110, -60, 110, 300, QUIET), walk(200, -60, 200, 300, QUIET, colour=(90, 200, 90))]
    frames = render(walkers, 120)
    found, _ = run_counter(frames)
    assert_matches(found, crossings(walkers, 120))


def test_u_turn_counts_nothing():
    walker = Walker([(QUIET, 160, 300), (QUIET + 25, 160, 122), (QUIET + 50, 160, 300)])
    found, _ = run_counter(render([walker], 120))
    assert found == []


def test_person_standing_on_the_line_then_going_back_counts_nothing():
    walker = Walker(
        [(QUIET, 160, -60), (QUIET + 30, 160, 120), (QUIET + 90, 160, 120), (QUIET + 120, 160, -60)]
    )
    found, _ = run_counter(render([walker], 200))
    assert found == []


def test_person_standing_on_the_line_then_going_on_counts_once():
    walker = Walker(
        [(QUIET, 160, -60), (QUIET + 30, 160, 120), (QUIET + 90, 160, 120), (QUIET + 120, 160, 300)]
    )
    found, _ = run_counter(render([walker], 200))
    assert [c.geometric for c in found] == ["down"]


def test_person_who_comes_back_counts_the_other_way():
    walker = Walker(
        [(QUIET, 160, -60), (QUIET + 40, 160, 200), (QUIET + 50, 160, 200), (QUIET + 90, 160, -60)]
    )
    found, _ = run_counter(render([walker], 160))
    assert_matches(found, crossings([walker], 160))
    assert [c.geometric for c in found] == ["down", "up"]


def test_sudden_light_changes_make_no_phantom_counts():
    walker = walk(160, -60, 160, 300, 80)
    frames = render([walker], 170, light=[(40, 1.5), (75, 1.0), (135, 0.7)])
    found, _ = run_counter(frames)
    assert_matches(found, crossings([walker], 170))


def test_light_change_with_nobody_there_counts_nothing():
    frames = render([], 100, light=[(30, 1.6), (60, 0.6), (80, 1.0)])
    found, _ = run_counter(frames)
    assert found == []


def test_vertical_line_counts_left_and_right():
    walkers = [walk(-60, 80, 380, 80, QUIET), walk(380, 170, -60, 170, QUIET + 20, colour=(90, 200, 90))]
    frames = render(walkers, 160)
    found, _ = run_counter(frames, line=(160, 0, 160, H - 1), in_side="L->R")
    assert sorted((c.geometric, c.direction) for c in found) == [("L->R", "in"), ("R->L", "out")]


def test_mask_ignores_movement_outside_the_watched_region():
    walkers = [walk(60, -60, 60, 300, QUIET), walk(250, -60, 250, 300, QUIET)]
    frames = render(walkers, 120)
    found, _ = run_counter(frames, mask=[(160, 0), (W - 1, 0), (W - 1, H - 1), (160, H - 1)])
    assert [c.geometric for c in found] == ["down"]


def test_short_segment_only_counts_crossings_through_it():
    walkers = [walk(60, -60, 60, 300, QUIET), walk(250, -60, 250, 300, QUIET)]
    frames = render(walkers, 120)
    found, _ = run_counter(frames, line=(180, 120, 319, 120))
    assert [c.geometric for c in found] == ["down"]


def test_larger_frames_are_processed_at_reduced_width():
    import cv2

    walker = walk(160, -60, 160, 300, QUIET)
    frames = [cv2.resize(f, (640, 480)) for f in render([walker], 120)]
    found, counter = run_counter(frames, line=(0, 240, 639, 240), process_width=320)
    assert counter.proc_size == (320, 240)
    assert [c.geometric for c in found] == ["down"]
    assert counter.person_size == pytest.approx(0.22 * (640**2 + 480**2) ** 0.5, rel=0.5)
