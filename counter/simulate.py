"""Simulated visitors for a break-beam door: beam edge events, a pin driver for gpiozero mock pins, and a day of
arrivals at a community center in accelerated time.

Beam edges are ``(t, beam, blocked)`` tuples (:class:`Edge`). The edge that completes a person's crossing carries
the model's ground truth in ``edge.completes`` ("in"/"out"), so :func:`expected_counts` can be asked about any
list of edges the model generated, sorted, merged or cut at a time. Everything here is deterministic for a seed;
nothing sleeps unless :func:`drive_pins` is given a ``sleep`` function.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable
from typing import NamedTuple

logger = logging.getLogger(__name__)

__all__ = ["Counts", "Edge", "VisitorModel", "day_schedule", "drive_pins", "expected_counts"]


class _EdgeTuple(NamedTuple):
    t: float
    beam: str
    blocked: bool


class Edge(_EdgeTuple):
    """A beam edge ``(t, beam, blocked)``; ``completes`` is "in"/"out" on the edge that completes a crossing."""

    completes: str | None = None


def _edge(t: float, beam: str, blocked: bool, completes: str | None = None) -> Edge:
    edge = Edge(t, beam, blocked)
    if completes is not None:
        edge.completes = completes
    return edge


class Counts(NamedTuple):
    ins: int
    outs: int


def expected_counts(edges: Iterable[tuple]) -> Counts:
    """Ground truth of the crossings the model generated in these edges (plain tuples count as nothing)."""
    ins = outs = 0
    for edge in edges:
        done = getattr(edge, "completes", None)
        ins += done == "in"
        outs += done == "out"
    return Counts(ins, outs)


class VisitorModel:
    """People walking through a two-beam doorway (A outside, B inside, ``beam_gap`` metres apart).

    Each person walks at 0.6-1.6 m/s and is 0.25-0.45 m deep at beam height, so a beam is blocked for 0.15-0.75 s
    and both beams together for a little less. Extras, each with its own rate: tailgating (the next person, at the
    same pace, breaks the first beam 60-200 ms after the one in front has left it, often while they still block
    the second beam), aborts (break the first beam, or both, and back out: no crossing), and contact bounce (a
    1-8 ms chatter on an edge, shorter than any sensible debounce). Tailgaters stay separable by two beams: the
    first beam clears between them for at least 60 ms; closer than that nobody can tell two people from one.
    """

    MIN_GAP = 0.3  # seconds between one person clearing the beams and the next (not tailgating) breaking one

    def __init__(
        self,
        seed: int | None = None,
        *,
        beam_gap: float = 0.12,
        in_share: float = 0.5,
        tailgate_rate: float = 0.15,
        abort_rate: float = 0.05,
        bounce_rate: float = 0.1,
        mean_interval: float = 4.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.beam_gap = beam_gap
        self.in_share = in_share
        self.tailgate_rate = tailgate_rate
        self.abort_rate = abort_rate
        self.bounce_rate = bounce_rate
        self.mean_interval = mean_interval

    def edges(self, n: int, start: float = 0.0) -> list[Edge]:
        """Edges for ``n`` crossings (plus occasional aborts, which count nothing), sorted by time."""
        plan: list[tuple[float, str]] = []
        t = start
        while len(plan) < n:
            if plan and self.rng.random() < self.tailgate_rate:
                plan.append(plan[-1])  # right behind the one before, same way
                continue
            t += self.rng.expovariate(1.0 / self.mean_interval)
            plan.append((t, "in" if self.rng.random() < self.in_share else "out"))
        return self.edges_for(plan, aborts=True)

    def edges_for(self, schedule: Iterable[tuple[float, str]], *, aborts: bool = False) -> list[Edge]:
        """Edges for crossings wanted at the given times, e.g. from :func:`day_schedule`.

        Someone who would run into the person before them follows close behind if going the same way (tailgating)
        and waits until the beams are clear otherwise. With ``aborts`` some people first turn back
        (``abort_rate``).
        """
        out: list[Edge] = []
        free_at = -math.inf  # when the beams are clear of everyone so far
        # the previous person: direction, pace, when they left the first beam
        prev: tuple[str, float, float] | None = None
        for want, direction in sorted(schedule):
            if direction not in ("in", "out"):
                raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
            if aborts and self.rng.random() < self.abort_rate:
                edges, free_at = self._abort(max(want, free_at + self.MIN_GAP), direction)
                out += edges
                prev = None
            pace = self.rng.uniform(0.6, 1.6)
            if prev is not None and prev[0] == direction and want < free_at + self.MIN_GAP:
                pace = prev[1]  # walking in line at the same pace
                t0 = max(want, prev[2] + self.rng.uniform(0.06, 0.2))
            else:
                t0 = max(want, free_at + self.MIN_GAP)
            edges, free_at, first_clear = self._passage(t0, direction, pace)
            out += edges
            prev = (direction, pace, first_clear)
        out.sort(key=lambda e: (e.t, e.beam))
        return out

    # -- one person ------------------------------------------------------------------------------------------

    def _passage(self, t0: float, direction: str, pace: float) -> tuple[list[Edge], float, float]:
        first, second = ("A", "B") if direction == "in" else ("B", "A")
        depth = self.rng.uniform(0.25, 0.45)
        gap_t, body_t = self.beam_gap / pace, depth / pace
        edges = [
            *self._bouncy(t0, first, True),
            *self._bouncy(t0 + gap_t, second, True),
            *self._bouncy(t0 + body_t, first, False),
            *self._bouncy(t0 + body_t + gap_t, second, False, completes=direction),
        ]
        return edges, t0 + body_t + gap_t, t0 + body_t

    def _abort(self, t0: float, direction: str) -> tuple[list[Edge], float]:
        first, second = ("A", "B") if direction == "in" else ("B", "A")
        if self.rng.random() < 0.5:  # break the first beam, back out
            end = t0 + self.rng.uniform(0.2, 1.0)
            return [*self._bouncy(t0, first, True), *self._bouncy(end, first, False)], end
        on_both = t0 + self.rng.uniform(0.1, 0.3)  # step onto both beams, turn back halfway
        back = on_both + self.rng.uniform(0.2, 0.8)
        end = back + self.rng.uniform(0.1, 0.4)
        edges = [
            *self._bouncy(t0, first, True),
            *self._bouncy(on_both, second, True),
            *self._bouncy(back, second, False),
            *self._bouncy(end, first, False),
        ]
        return edges, end

    def _bouncy(self, t: float, beam: str, blocked: bool, completes: str | None = None) -> list[Edge]:
        """An edge, sometimes preceded by a short chatter (the level flips back and forth once)."""
        if self.rng.random() >= self.bounce_rate:
            return [_edge(t, beam, blocked, completes)]
        flip = t + self.rng.uniform(0.001, 0.008)
        settle = flip + self.rng.uniform(0.001, 0.008)
        return [
            _edge(t, beam, blocked),
            _edge(flip, beam, not blocked),
            _edge(settle, beam, blocked, completes),
        ]


def drive_pins(
    pin_a,
    pin_b,
    edges: Iterable[tuple],
    sleep: Callable[[float], None] | None = None,
    *,
    speed: float = 1.0,
    active_low: bool = True,
    on_time: Callable[[float], None] | None = None,
) -> int:
    """Apply edges to two gpiozero mock pins with ``drive_low()``/``drive_high()``; returns how many.

    ``sleep=None`` applies them at once (tests, benches). ``sleep=time.sleep`` waits between edges, ``speed``
    times faster than the edges' own time (a live demo). ``active_low`` (the default wiring, pull-up and a
    receiver that pulls low when the beam is broken) drives a blocked beam low. ``on_time(t)`` is called with each
    edge's time just before its pin changes, so a test can move its fake clock along the script.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    pins = {"A": pin_a, "B": pin_b}
    last: float | None = None
    applied = 0
    for t, beam, blocked in edges:
        if sleep is not None and last is not None and t > last:
            sleep((t - last) / speed)
        last = t
        if on_time is not None:
            on_time(t)
        pin = pins[beam]
        if bool(blocked) == active_low:
            pin.drive_low()
        else:
            pin.drive_high()
        applied += 1
    return applied


# -- a day at a community center ----------------------------------------------------------------------------


def day_schedule(
    seed: int | None, visits: int = 300, day_start_hour: float = 8, day_end_hour: float = 20
) -> list[tuple[float, str]]:
    """A day of visits at a community center door: ``[(seconds since day start, "in"|"out"), ...]`` sorted.

    Arrivals peak in the morning (about 9-11) and afternoon (about 14-16) over a thin all-day background. Once to
    three times a day a group of 20-40 arrives within a few minutes for an activity and leaves together 60-90 min
    later. Everyone else stays 20-120 min. Everybody leaves before the day ends, so ins == outs == visits.
    """
    if visits < 0 or day_end_hour <= day_start_hour:
        raise ValueError("need visits >= 0 and day_end_hour > day_start_hour")
    rng = random.Random(seed)
    length = (day_end_hour - day_start_hour) * 3600.0
    closing = length - 60.0  # last people out a minute before the day ends
    latest_arrival = max(0.0, closing - 20 * 60.0)
    events: list[tuple[float, str]] = []

    def since_start(hour: float) -> float:
        return (hour - day_start_hour) * 3600.0

    def add_visit(arrive: float, stay: float) -> None:
        arrive = min(max(arrive, 0.0), latest_arrival)
        leave = min(arrive + stay, closing - rng.uniform(0.0, 300.0))
        events.append((arrive, "in"))
        events.append((max(leave, arrive + 60.0), "out"))

    remaining = visits
    for _ in range(rng.randint(1, 3)):
        size = min(rng.randint(20, 40), remaining // 2)
        if size <= 0:
            break
        begins = since_start(rng.choice([9.5, 10.0, 14.0, 14.5, 15.0, 16.0, 18.5]))
        ends = begins + rng.choice([60, 75, 90]) * 60.0
        for _ in range(size):
            arrive = begins - rng.uniform(0.0, 300.0)
            add_visit(arrive, ends + rng.uniform(0.0, 240.0) - arrive)
        remaining -= size

    for _ in range(remaining):
        pick = rng.random()
        if pick < 0.4:
            hour = rng.gauss(10.0, 0.7)
        elif pick < 0.8:
            hour = rng.gauss(15.0, 0.7)
        else:
            hour = rng.uniform(day_start_hour, day_end_hour)
        add_visit(since_start(hour), rng.uniform(20.0, 120.0) * 60.0)

    events.sort()
    logger.debug("day schedule: %d visits, %d events", visits, len(events))
    return events
