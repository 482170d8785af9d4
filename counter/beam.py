"""Break-beam crossing detector: a pure state machine (no I/O, no sleeping, no threads).

Two beams cross the doorway a few centimetres apart, closer together than a person is deep: beam A on the
outside, beam B on the inside (``swap=True`` flips which way is ``in``). The detector is fed timestamped beam edges
``feed(t, beam, blocked)`` and advanced with ``tick(t)``; it returns the crossings each call completes.

Stage 1, debounce (per beam). A raw edge takes effect only if the new level holds for ``debounce`` seconds; a
level that flips back sooner is ignored (contact bounce, edge chatter). An edge that holds is committed with the
time of the raw edge itself, in time order across both beams, on the first ``feed``/``tick`` at or after
``edge + debounce``. So a crossing is reported up to ``debounce`` late, stamped with the time it happened.

Stage 2, people on the beams. Beam states are written ``AB`` (1 = blocked). One person walking in::

    00 --A--> 10 --B--> 11 --a--> 01 --b--> 00      => in       (A/B: beam blocked, a/b: beam clears)

and out is the mirror image (``00 -B-> 01 -A-> 11 -b-> 10 -a-> 00``). Rather than matching these patterns, the
detector keeps track of who blocks each beam. A person has an *origin*: the side they came from (``outside`` if
A was their first beam, ``inside`` if B was). On each committed edge:

    beam X blocked, other beam free              -> a new person, origin = X's side
    beam X blocked, other beam held by a person   -> that person, if they came from the far side (they are
                                                     walking on across both beams); otherwise a new person
                                                     from X's side (someone following close behind)
    beam X clears, same person still on the other -> nothing (they moved on to the other beam or stepped back)
    beam X clears, person on X alone              -> they leave the zone on X's side: a crossing if that is not
                                                     the side they came from (out through A, in through B),
                                                     nothing if it is (broke A and backed out; turned back)

Tailgating: a second person breaks A after the first has left A but while the first still blocks B::

    00 -A-> 10 -B-> 11 -a-> 01 -A-> 11 -b-> 10 -B-> 11 -a-> 01 -b-> 00   => in, in
                                    |       '-- first leaves through B: in
                                    '-- A blocked while B is held by someone who came from outside: a 2nd person

At most two people fit in the zone (one per beam), so this is a small, finite machine. What two beams cannot see,
and this detector does not pretend to: two people side by side, or so close that A never clears between them,
count as one (DOMAIN.md). A single person who passes A completely, steps back onto A and then goes in looks
exactly like tailgating; it is counted as two.

Health. A beam blocked for ``stuck_after`` seconds (a bag, a door held open, a misaligned sensor) turns health to
``blocked``: people tracking is dropped and nothing is counted until every stuck beam clears, which turns health
back to ``ok`` (and anyone still on the other beam is then of unknown origin and never counted). A person whose
passage (first beam broken to leaving the zone) takes longer than ``max_crossing`` is not counted either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

Beam = Literal["A", "B"]
Direction = Literal["in", "out"]
Health = Literal["ok", "blocked"]

_OUTSIDE = "outside"
_INSIDE = "inside"
_SIDE = {"A": _OUTSIDE, "B": _INSIDE}  # the side of the doorway each beam faces
_OTHER = {"A": "B", "B": "A"}


@dataclass(frozen=True)
class BeamTimings:
    """Timing parameters of a break-beam door, in seconds.

    debounce: a level must hold this long to count as an edge. Contact bounce and edge chatter last a few
        milliseconds; the shortest real level is about 60 ms (someone fast passing beams 10 cm apart).
    max_crossing: a person who takes longer than this from first breaking a beam to leaving the beams is not
        counted: that is someone standing in the doorway (holding the door, talking), not walking through.
        A slow walker with a frame needs 2-4 s.
    stuck_after: a beam blocked continuously this long makes health ``blocked`` and stops counting until it
        clears (a bag on the floor, a wedged door, a misaligned emitter).
    """

    debounce: float = 0.03
    max_crossing: float = 8.0
    stuck_after: float = 10.0

    def __post_init__(self) -> None:
        if self.debounce < 0:
            raise ValueError(f"debounce must be >= 0, got {self.debounce}")
        if self.max_crossing <= 0:
            raise ValueError(f"max_crossing must be > 0, got {self.max_crossing}")
        if self.stuck_after <= self.debounce:
            raise ValueError(
                f"stuck_after ({self.stuck_after}) must be longer than debounce ({self.debounce})"
            )


@dataclass(frozen=True)
class Crossing:
    """One person crossed the door. ``t`` is the time of the (debounced) beam edge that completed it."""

    t: float
    direction: Direction
    count: int = 1


@dataclass(eq=False)
class _Person:
    origin: str | None  # _OUTSIDE, _INSIDE, or None when unknown (never counted)
    since: float  # when they first broke a beam


@dataclass
class _Line:
    """One beam: debounced level, pending raw level, stuck flag, and who blocks it."""

    blocked: bool = False
    changed_at: float = 0.0  # time of the last debounced edge (start of the block while blocked)
    pending: bool | None = None  # raw level waiting to hold for `debounce`
    pending_at: float = 0.0
    pending_seq: int = 0  # arrival order, to break ties between the two beams
    stuck: bool = False
    holder: _Person | None = None


class BeamDetector:
    """Turns timestamped beam edges into crossings. See the module docstring for the state machine."""

    def __init__(self, timings: BeamTimings = BeamTimings(), swap: bool = False) -> None:
        self.timings = timings
        self.swap = swap
        self._lines: dict[str, _Line] = {"A": _Line(), "B": _Line()}
        self._now: float | None = None
        self._seq = 0

    @property
    def health(self) -> Health:
        return "blocked" if any(line.stuck for line in self._lines.values()) else "ok"

    @property
    def levels(self) -> tuple[bool, bool]:
        """Debounced (A blocked, B blocked)."""
        return self._lines["A"].blocked, self._lines["B"].blocked

    def feed(self, t: float, beam: Beam, blocked: bool) -> list[Crossing]:
        """A raw edge (or level report) of one beam at time t. Returns crossings completed so far."""
        if beam not in self._lines:
            raise ValueError(f"beam must be 'A' or 'B', got {beam!r}")
        t = self._clock(t)
        out = self._advance(t)
        line = self._lines[beam]
        blocked = bool(blocked)
        if line.pending is None:
            if blocked != line.blocked:
                self._seq += 1
                line.pending, line.pending_at, line.pending_seq = blocked, t, self._seq
        elif blocked == line.blocked:
            logger.debug("beam %s bounce at %.3f ignored", beam, t)
            line.pending = None
        # else: the pending level reported again; it keeps its original time
        out += self._advance(t)
        return out

    def set_levels(self, t: float, a_blocked: bool, b_blocked: bool) -> None:
        """Take the beams' levels as they are at time t, without debounce and without edges (at start-up, when
        the sensors are first read). Whoever blocks a beam now came from nobody knows where: never counted."""
        t = self._clock(t)
        for line, blocked in zip(self._lines.values(), (a_blocked, b_blocked), strict=True):
            line.blocked, line.changed_at, line.pending, line.stuck = bool(blocked), t, None, False
        self._forget_people(t)
        self._check_stuck(t)

    def tick(self, t: float) -> list[Crossing]:
        """Advance time to t with no edge: commits edges that have held long enough, checks for stuck beams."""
        return self._advance(self._clock(t))

    def reset_health(self) -> None:
        """Clear a ``blocked`` health by hand (e.g. after realigning a sensor). A beam still blocked is timed
        again from the last time seen and is reported stuck again after another ``stuck_after``."""
        if self.health == "ok":
            return
        now = self._now if self._now is not None else 0.0
        for line in self._lines.values():
            line.stuck = False
            if line.blocked:
                line.changed_at = now
        self._forget_people(now)
        logger.info("beam health reset by hand")

    # -- internals -------------------------------------------------------------------------------------------

    def _clock(self, t: float) -> float:
        if self._now is not None and t < self._now:
            logger.debug("time went backwards (%.3f < %.3f); using %.3f", t, self._now, self._now)
            t = self._now
        self._now = t
        return t

    def _advance(self, now: float) -> list[Crossing]:
        out: list[Crossing] = []
        while True:
            due = [
                (line.pending_at, line.pending_seq, name)
                for name, line in self._lines.items()
                if line.pending is not None and line.pending_at + self.timings.debounce <= now
            ]
            if not due:
                break
            at, _, name = min(due)
            self._check_stuck(at)
            out += self._commit(name, at)
        self._check_stuck(now)
        return out

    def _check_stuck(self, at: float) -> None:
        for name, line in self._lines.items():
            if not line.blocked or line.stuck:
                continue
            end = min(at, line.pending_at) if line.pending is False else at
            if end - line.changed_at >= self.timings.stuck_after:
                line.stuck = True
                for other in self._lines.values():
                    other.holder = None
                logger.warning(
                    "beam %s blocked since %.3f (over %.1f s): health blocked, not counting",
                    name,
                    line.changed_at,
                    self.timings.stuck_after,
                )

    def _commit(self, name: str, at: float) -> list[Crossing]:
        line = self._lines[name]
        assert line.pending is not None
        line.blocked, line.pending, line.changed_at = line.pending, None, at
        if line.stuck and not line.blocked:
            line.stuck = False
            logger.info("beam %s clear again at %.3f", name, at)
            if self.health == "ok":
                logger.info("beam health ok")
                self._forget_people(at)
            return []
        if self.health != "ok":
            return []
        return self._step(name, line.blocked, at)

    def _forget_people(self, at: float) -> None:
        """Start tracking afresh: whoever blocks a beam now came from nobody knows where."""
        unknown = _Person(origin=None, since=at)
        for line in self._lines.values():
            line.holder = unknown if line.blocked else None

    def _step(self, name: str, blocked: bool, at: float) -> list[Crossing]:
        line, other = self._lines[name], self._lines[_OTHER[name]]
        side = _SIDE[name]
        if blocked:
            walker = other.holder
            if walker is not None and walker.origin not in (None, side):
                line.holder = walker  # walking on from the far side, now across both beams
            else:
                line.holder = _Person(origin=side, since=at)  # someone new (possibly close behind another)
            return []

        person, line.holder = line.holder, None
        if person is None or other.holder is person:
            return []  # still on the other beam
        if person.origin != _SIDE[_OTHER[name]]:
            logger.debug("beam %s clear at %.3f: left on the side they came from, not counted", name, at)
            return []
        took = at - person.since
        if took > self.timings.max_crossing:
            logger.info("passage of %.1f s (over max_crossing) at %.3f not counted", took, at)
            return []
        direction: Direction = "in" if name == "B" else "out"
        if self.swap:
            direction = "out" if direction == "in" else "in"
        logger.debug("crossing %s at %.3f (took %.2f s)", direction, at, took)
        return [Crossing(t=at, direction=direction)]
