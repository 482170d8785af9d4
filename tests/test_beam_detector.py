"""The pure break-beam detector, fed scripted timestamps (nothing sleeps)."""

from __future__ import annotations

import pytest

from footfall.counter.beam import BeamDetector, BeamTimings, Crossing
from footfall.counter.simulate import Edge, VisitorModel, day_schedule, expected_counts

SETTLE = 1.0  # a tick this long after the last edge commits anything pending


def run(edges, detector=None, settle=SETTLE):
    """Feed edges (t, beam, blocked) in order, then tick past the last one; returns all crossings."""
    detector = detector or BeamDetector()
    out: list[Crossing] = []
    last = 0.0
    for t, beam, blocked in edges:
        out += detector.feed(t, beam, blocked)
        last = t
    out += detector.tick(last + settle)
    return out


def walk(t0, direction="in", gap=0.1, body=0.3):
    """One person: first beam at t0, second `gap` later, each blocked for `body` seconds."""
    first, second = ("A", "B") if direction == "in" else ("B", "A")
    times = [round(t, 9) for t in (t0, t0 + gap, t0 + body, t0 + body + gap)]
    return [
        (times[0], first, True),
        (times[1], second, True),
        (times[2], first, False),
        (times[3], second, False),
    ]


def directions(crossings):
    return [c.direction for c in crossings]


def test_defaults_are_sensible():
    timings = BeamTimings()
    assert 0.01 <= timings.debounce <= 0.05
    assert timings.stuck_after == 10.0
    assert timings.debounce < timings.max_crossing <= timings.stuck_after
    with pytest.raises(ValueError):
        BeamTimings(debounce=-1)
    with pytest.raises(ValueError):
        BeamTimings(stuck_after=0.01)


def test_a_then_b_is_in():
    crossings = run(walk(10.0, "in"))
    assert crossings == [Crossing(t=10.4, direction="in", count=1)]


def test_b_then_a_is_out():
    crossings = run(walk(10.0, "out"))
    assert crossings == [Crossing(t=10.4, direction="out")]


def test_crossing_is_reported_after_debounce_with_the_edge_time():
    detector = BeamDetector()
    edges = walk(5.0, "in")
    for t, beam, blocked in edges:
        assert detector.feed(t, beam, blocked) == []
    assert detector.tick(5.4 + 0.01) == []  # the last edge has not held for 30 ms yet
    assert detector.tick(5.4 + 0.03) == [Crossing(t=5.4, direction="in")]
    assert detector.tick(6.0) == []  # reported once


def test_next_edge_also_completes_a_pending_crossing():
    detector = BeamDetector()
    for t, beam, blocked in walk(1.0, "in"):
        detector.feed(t, beam, blocked)
    assert detector.feed(3.0, "B", True) == [Crossing(t=1.4, direction="in")]


def test_breaking_a_and_backing_out_counts_nothing():
    assert run([(1.0, "A", True), (1.6, "A", False)]) == []
    assert run([(1.0, "B", True), (1.6, "B", False)]) == []


def test_turning_back_halfway_counts_nothing():
    # A, A+B, then back out through A
    edges = [(1.0, "A", True), (1.2, "B", True), (1.8, "B", False), (2.1, "A", False)]
    assert run(edges) == []
    # and the mirror image from the inside
    edges = [(1.0, "B", True), (1.2, "A", True), (1.8, "A", False), (2.1, "B", False)]
    assert run(edges) == []


def test_dithering_in_the_doorway_then_walking_in_counts_one():
    edges = [
        (1.0, "A", True),
        (1.2, "B", True),
        (1.4, "B", False),  # step back onto A only
        (1.7, "B", True),  # forward again
        (2.0, "A", False),
        (2.2, "B", False),
    ]
    assert directions(run(edges)) == ["in"]


def test_tailgating_300ms_apart_with_overlapping_breaks_counts_two():
    # first: A 0.0-0.25, B 0.1-0.35; second 300 ms behind: A 0.3-0.55, B 0.4-0.65.
    # The second breaks A while the first still blocks B: 00 10 11 01 11 10 11 01 00.
    edges = sorted(walk(0.0, "in", gap=0.1, body=0.25) + walk(0.3, "in", gap=0.1, body=0.25))
    assert [e[0] for e in edges] == sorted(e[0] for e in edges)
    crossings = run(edges)
    assert crossings == [Crossing(t=0.35, direction="in"), Crossing(t=0.65, direction="in")]


def test_tailgating_out_counts_two():
    edges = sorted(walk(0.0, "out", gap=0.1, body=0.25) + walk(0.3, "out", gap=0.1, body=0.25))
    assert directions(run(edges)) == ["out", "out"]


def test_tailgater_who_backs_out_is_not_counted():
    first = walk(0.0, "in", gap=0.1, body=0.25)
    second = [(0.3, "A", True), (0.9, "A", False)]  # breaks A while the first is on B, then backs out
    assert directions(run(sorted(first + second))) == ["in"]


def test_two_people_without_a_gap_on_a_count_as_one():
    # A never clears between them: two beams cannot tell this from one slow person (documented limitation)
    edges = [(0.0, "A", True), (0.1, "B", True), (0.6, "A", False), (0.7, "B", False)]
    assert directions(run(edges)) == ["in"]


def test_bounce_shorter_than_debounce_is_ignored():
    edges = [
        (1.000, "A", True),
        (1.004, "A", False),  # chatter on the leading edge
        (1.009, "A", True),
        (1.100, "B", True),
        (1.300, "A", False),
        (1.305, "A", True),  # chatter on the trailing edge
        (1.312, "A", False),
        (1.400, "B", False),
        (5.000, "B", True),  # a lone glitch: 10 ms, no crossing, no person
        (5.010, "B", False),
    ]
    crossings = run(edges)
    assert crossings == [Crossing(t=1.4, direction="in")]


def test_glitches_alone_count_nothing():
    edges = []
    for i in range(50):
        t = i * 0.5
        edges += [(t, "A", True), (t + 0.01, "A", False), (t + 0.2, "B", True), (t + 0.215, "B", False)]
    detector = BeamDetector()
    assert run(edges, detector) == []
    assert detector.levels == (False, False)


def test_repeated_level_reports_are_harmless():
    edges = walk(1.0, "in")
    doubled = [e for edge in edges for e in (edge, (edge[0] + 0.005, edge[1], edge[2]))]
    assert directions(run(doubled)) == ["in"]


def test_crossing_time_is_the_last_debounced_edge():
    edges = [(1.0, "A", True), (1.1, "B", True), (1.3, "A", False), (1.4, "B", False), (1.41, "B", True)]
    edges += [(1.42, "B", False)]  # bounce on the final edge: the real edge is the one that held, at 1.42
    assert run(edges) == [Crossing(t=1.42, direction="in")]


def test_stuck_beam_makes_health_blocked_without_phantom_counts_and_recovers():
    detector = BeamDetector()
    out = detector.feed(0.0, "A", True)  # a bag put down on beam A
    out += detector.tick(9.0)
    assert detector.health == "ok"
    out += detector.tick(10.5)
    assert detector.health == "blocked"
    # people keep walking through while A is blocked: only B moves
    for i in range(5):
        t = 12.0 + i * 2
        out += detector.feed(t, "B", True)
        out += detector.feed(t + 0.4, "B", False)
    out += detector.tick(25.0)
    assert detector.health == "blocked"
    out += detector.feed(30.0, "A", False)  # bag removed
    out += detector.tick(30.1)
    assert out == []
    assert detector.health == "ok"
    # counting works again
    assert directions(run(walk(40.0, "in"), detector)) == ["in"]
    assert directions(run(walk(50.0, "out"), detector)) == ["out"]


def test_stuck_detection_by_feed_alone():
    detector = BeamDetector()
    detector.feed(0.0, "B", True)
    detector.feed(11.0, "A", True)  # no tick, but this edge is 11 s later
    assert detector.health == "blocked"


def test_short_block_before_the_limit_is_not_stuck():
    detector = BeamDetector()
    detector.feed(0.0, "A", True)
    detector.feed(9.9, "A", False)
    detector.tick(20.0)  # the clear edge arrived before the limit, even if seen late
    assert detector.health == "ok"


def test_recovery_with_someone_on_the_other_beam_counts_nothing_for_them():
    detector = BeamDetector()
    out = detector.feed(0.0, "A", True)
    out += detector.tick(11.0)
    assert detector.health == "blocked"
    out += detector.feed(20.0, "B", True)  # someone on B when A clears: origin unknown
    out += detector.feed(20.2, "A", False)
    out += detector.feed(20.5, "B", False)
    out += detector.tick(21.0)
    assert detector.health == "ok"
    assert out == []


def test_reset_health_rearms_the_stuck_timer():
    detector = BeamDetector()
    detector.feed(0.0, "A", True)
    detector.tick(12.0)
    assert detector.health == "blocked"
    detector.reset_health()
    assert detector.health == "ok"
    detector.tick(20.0)
    assert detector.health == "ok"
    detector.tick(22.5)
    assert detector.health == "blocked"
    detector.feed(23.0, "A", False)
    assert run(walk(30.0, "in"), detector) == [Crossing(t=30.4, direction="in")]
    assert detector.health == "ok"


def test_passage_longer_than_max_crossing_is_not_counted():
    detector = BeamDetector(BeamTimings(max_crossing=8.0))
    slow = [(0.0, "A", True), (2.0, "B", True), (4.0, "A", False), (5.0, "B", False)]
    assert directions(run(slow, detector)) == ["in"]
    loiter = [(10.0, "A", True), (13.0, "B", True), (17.0, "A", False), (19.0, "B", False)]
    assert run(loiter, detector) == []
    assert detector.health == "ok"


def test_swap_flips_direction():
    detector = BeamDetector(swap=True)
    assert directions(run(walk(1.0, "in") + walk(3.0, "out"), detector)) == ["out", "in"]


def test_time_going_backwards_is_tolerated():
    detector = BeamDetector()
    edges = [(1.0, "A", True), (1.1, "B", True), (1.09, "A", False), (1.4, "B", False)]
    assert directions(run(edges, detector)) == ["in"]


def test_bad_beam_name_is_rejected():
    with pytest.raises(ValueError):
        BeamDetector().feed(0.0, "C", True)


def test_zero_debounce_commits_at_once():
    detector = BeamDetector(BeamTimings(debounce=0.0))
    out = []
    for t, beam, blocked in walk(1.0, "out"):
        out += detector.feed(t, beam, blocked)
    assert out == [Crossing(t=1.4, direction="out")]


# -- against the visitor model ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(60))
def test_counts_equal_model_truth(seed):
    edges = VisitorModel(seed).edges(200)
    truth = expected_counts(edges)
    crossings = run(edges)
    assert (directions(crossings).count("in"), directions(crossings).count("out")) == truth


def test_model_produces_the_hard_cases():
    model = VisitorModel(7, tailgate_rate=0.3, abort_rate=0.2, bounce_rate=0.3)
    edges = model.edges(300)
    truth = expected_counts(edges)
    assert truth.ins + truth.outs == 300
    assert truth.ins > 100 and truth.outs > 100
    # bounce: some level lasts a few milliseconds
    by_beam: dict[str, list[Edge]] = {"A": [], "B": []}
    for edge in edges:
        by_beam[edge.beam].append(edge)
    shortest = min(b.t - a.t for seq in by_beam.values() for a, b in zip(seq, seq[1:], strict=False))
    assert shortest < 0.01
    # tailgating with overlap: 11 -a-> 01 -A-> 11 with B held all along and 01 lasting longer than a bounce
    level = {"A": False, "B": False}
    a_cleared_under_b = None
    overlaps = 0
    for t, beam, blocked in edges:
        if beam == "B" and not blocked:
            a_cleared_under_b = None
        elif beam == "A" and not blocked and level["B"]:
            a_cleared_under_b = t
        elif beam == "A" and blocked and a_cleared_under_b is not None and t - a_cleared_under_b > 0.03:
            overlaps += 1
        level[beam] = blocked
    assert overlaps > 5
    crossings = run(edges, BeamDetector())
    assert (directions(crossings).count("in"), directions(crossings).count("out")) == truth


def test_model_is_deterministic_and_sorted():
    a = VisitorModel(3).edges(50)
    b = VisitorModel(3).edges(50)
    assert a == b
    assert [e.t for e in a] == sorted(e.t for e in a)
    assert all(isinstance(e, tuple) and len(e) == 3 for e in a)


def test_expected_counts_survives_slicing_and_ignores_plain_tuples():
    edges = VisitorModel(11).edges(40)
    half = edges[len(edges) // 2].t
    early = [e for e in edges if e.t < half]
    late = [e for e in edges if e.t >= half]
    total = expected_counts(edges)
    assert expected_counts(early).ins + expected_counts(late).ins == total.ins
    assert expected_counts([(0.0, "A", True), (0.5, "A", False)]) == (0, 0)


def test_a_whole_day_through_the_detector():
    schedule = day_schedule(5, visits=300)
    edges = VisitorModel(5).edges_for(schedule)
    truth = expected_counts(edges)
    assert truth == (300, 300)
    crossings = run(edges)
    assert (directions(crossings).count("in"), directions(crossings).count("out")) == truth


def test_day_schedule_shape():
    schedule = day_schedule(1, visits=300, day_start_hour=8, day_end_hour=20)
    assert len(schedule) == 600
    assert schedule == sorted(schedule)
    assert all(0 <= t < 12 * 3600 for t, _ in schedule)
    ins = [t for t, d in schedule if d == "in"]
    assert len(ins) == 300
    hours = [8 + t / 3600 for t in ins]
    morning = sum(9 <= h < 11 for h in hours)
    afternoon = sum(14 <= h < 16 for h in hours)
    evening = sum(18 <= h < 20 for h in hours)
    assert morning > evening and afternoon > evening
    # a group: 20+ arrivals within five minutes somewhere in the day
    assert max(sum(1 for u in ins if t <= u < t + 300) for t in ins) >= 20
    # everybody leaves after they arrive, and the room is empty at the end of the day
    occupancy = 0
    for _, direction in schedule:
        occupancy += 1 if direction == "in" else -1
        assert occupancy >= 0
    assert occupancy == 0
    assert day_schedule(1) == schedule
    assert day_schedule(2) != schedule


def test_set_levels_at_start_counts_nobody_already_there():
    detector = BeamDetector()
    detector.set_levels(0.0, True, True)
    assert detector.levels == (True, True)
    out = detector.feed(0.5, "A", False)
    out += detector.feed(0.8, "B", False)
    out += detector.tick(2.0)
    assert out == []
    assert directions(run(walk(3.0, "in"), detector)) == ["in"]
    detector.set_levels(10.0, False, True)
    detector.tick(20.5)
    assert detector.health == "blocked"
