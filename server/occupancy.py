"""Occupancy and daily aggregation: pure functions of timestamped inputs. No I/O here (sansio).

A door moves people between its two spaces: `in` from its outside into its inside. Live occupancy never shows
below 0: an exit from an empty room is absorbed and counted in `corrected`, while `raw_net` keeps entries - exits.
Because of that floor the result depends on order: a day is always counted in event-time order (`timeline`).
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, replace

from footfall.clock import format_ts, parse_ts
from footfall.site import OUTDOORS, Door


@dataclass(frozen=True)
class RoomCounts:
    day: dt.date
    occupancy: int = 0
    raw_net: int = 0
    corrected: int = 0
    entries: int = 0
    exits: int = 0
    peak: int = 0
    peak_at: dt.datetime | None = None


def moves(door: Door, direction: str, count: int) -> list[tuple[str, int]]:
    """(room, +n entering / -n leaving) for a crossing; the outdoors is not a room."""
    src, dst = (door.outside, door.inside) if direction == "in" else (door.inside, door.outside)
    out = []
    if dst != OUTDOORS:
        out.append((dst, count))
    if src != OUTDOORS:
        out.append((src, -count))
    return out


def apply(counts: RoomCounts, delta: int, at: dt.datetime) -> RoomCounts:
    """Apply people entering (delta > 0) or leaving (delta < 0) at time `at`."""
    # Built directly rather than with dataclasses.replace: ingest calls this for every crossing.
    c = counts
    if delta >= 0:
        occupancy = c.occupancy + delta
        peak, peak_at = (occupancy, at) if occupancy > c.peak else (c.peak, c.peak_at)
        return RoomCounts(
            c.day, occupancy, c.raw_net + delta, c.corrected, c.entries + delta, c.exits, peak, peak_at
        )
    leaving = -delta
    absorbed = max(0, leaving - c.occupancy)
    return RoomCounts(
        c.day,
        c.occupancy - leaving + absorbed,
        c.raw_net - leaving,
        c.corrected + absorbed,
        c.entries,
        c.exits + leaving,
        c.peak,
        c.peak_at,
    )


def set_occupancy(counts: RoomCounts, value: int, at: dt.datetime) -> RoomCounts:
    """A staff correction: the live value becomes `value`; the difference is recorded as a correction."""
    peak, peak_at = (value, at) if value > counts.peak else (counts.peak, counts.peak_at)
    return replace(
        counts,
        occupancy=value,
        corrected=counts.corrected + (value - counts.occupancy),
        peak=peak,
        peak_at=peak_at,
    )


def current(counts: RoomCounts | None, day: dt.date) -> RoomCounts:
    """Counts for `day`: yesterday's numbers are reset to zero at the day boundary."""
    if counts is None or counts.day != day:
        return RoomCounts(day=day)
    return counts


Crossing = tuple[dt.datetime | str, str, str, int]  # (ts, device, direction, count)
Correction = tuple[dt.datetime | str, str, int]  # (at, room, value): a staff correction


def _text(ts: dt.datetime | str) -> str:
    return ts if isinstance(ts, str) else format_ts(ts)


def timeline(crossings: Iterable[Crossing], corrections: Iterable[Correction] = ()) -> list[tuple]:
    """THE order of a day (docs/reports.md, "Occupancy and peak"): by event time, as stored (UTC, milliseconds, so
    text order is time order); at the same millisecond crossings before corrections, then by device, direction
    and count. Items: (ts text, 0, device, direction, count) or (ts text, 1, room, value)."""
    items = [(_text(ts), 0, device, direction, count) for ts, device, direction, count in crossings]
    items += [(_text(at), 1, room, value) for at, room, value in corrections]
    items.sort()
    return items


def replay(
    crossings: Iterable[Crossing],
    doors_by_device: dict[str, Door],
    day: dt.date,
    corrections: Iterable[Correction] = (),
) -> dict[str, RoomCounts]:
    """A day's occupancy from its crossings and staff corrections, replayed from zero in `timeline` order with the
    floor at zero applied in that order: the same events give the same counts and peak whatever order, or how
    often, they arrived. Live occupancy (ingest), the daily API and the reports all use this definition."""
    rooms: dict[str, RoomCounts] = {}
    for item in timeline(crossings, corrections):
        at = parse_ts(item[0])
        if item[1] == 1:
            _ts, _kind, room, value = item
            rooms[room] = set_occupancy(rooms.get(room) or RoomCounts(day=day), value, at)
            continue
        _ts, _kind, device, direction, count = item
        door = doors_by_device.get(device)
        if door is None:
            continue
        for room, delta in moves(door, direction, count):
            rooms[room] = apply(rooms.get(room) or RoomCounts(day=day), delta, at)
    return rooms


def replay_day(
    crossings: Iterable[Crossing], doors_by_device: dict[str, Door], day: dt.date
) -> dict[str, RoomCounts]:
    """Recount a day from its crossings alone (no corrections): see `replay`."""
    return replay(crossings, doors_by_device, day)


CHECKPOINT_EVERY = 64  # items between saved states: a late event replays at most this many before its place
# A room's running counts as plain numbers, for the replay loop: (occupancy, raw_net, corrected, entries, exits,
# peak, peak ts text). RoomCounts is built once per batch, not once per crossing.
_ZERO = (0, 0, 0, 0, 0, 0, None)


class RoomLog:
    """One room's day in `timeline` order, with its counts saved every CHECKPOINT_EVERY items, so that live
    ingest gives exactly `replay`'s counts without replaying the day per batch: new items are put in their
    place and the day is replayed only from the checkpoint before the earliest of them. A late backlog (a door
    that was offline) costs a replay from its first event on, not a recount from the store."""

    def __init__(
        self, room: str, day: dt.date, doors_by_device: dict[str, Door], every: int = CHECKPOINT_EVERY
    ):
        self.room, self.day, self.every = room, day, every
        # (device, direction) -> this room's change per person crossing; absent: the door is not this room's.
        self._delta: dict[tuple[str, str], int] = {}
        for device, door in doors_by_device.items():
            for direction in ("in", "out"):
                change = sum(d for r, d in moves(door, direction, 1) if r == room)
                if change:
                    self._delta[device, direction] = change
        self._items: list[tuple] = []
        self._states: list[tuple] = [_ZERO]  # _states[k]: the counts before item k * every
        self.counts = RoomCounts(day=day)

    @classmethod
    def of_day(
        cls,
        room: str,
        day: dt.date,
        doors_by_device: dict[str, Door],
        crossings: Iterable[Crossing],
        corrections: Iterable[Correction] = (),
    ) -> RoomLog:
        """A room's log of a day from its stored crossings and staff corrections (other rooms' are left out)."""
        log = cls(room, day, doors_by_device)
        log.add([item for item in timeline(crossings, corrections) if log.touches(item)])
        return log

    def touches(self, item: tuple) -> bool:
        if item[1] == 1:
            return item[2] == self.room
        return (item[2], item[3]) in self._delta

    @property
    def latest(self) -> str | None:
        """The event time (text) of the last item counted, if any."""
        return self._items[-1][0] if self._items else None

    def add(self, items: list[tuple]) -> RoomCounts:
        """Count `timeline` items of this room (new ones: a stored event is added once) in their place."""
        if not items:
            return self.counts
        items = sorted(items)
        start = bisect.bisect_left(self._items, items[0])
        if start == len(self._items):
            self._items += items
        else:
            self._items[start:] = heapq.merge(self._items[start:], items)
        # The state before index k * every is saved once the replay has passed it.
        checkpoint = min(start // self.every, len(self._states) - 1)
        del self._states[checkpoint + 1 :]
        self._replay_from(checkpoint)
        return self.counts

    def _replay_from(self, checkpoint: int) -> None:
        every, delta_of, states = self.every, self._delta, self._states
        occupancy, raw_net, corrected, entries, exits, peak, peak_ts = states[checkpoint]
        items = self._items
        for index in range(checkpoint * every, len(items)):
            if index % every == 0 and index // every == len(states):
                states.append((occupancy, raw_net, corrected, entries, exits, peak, peak_ts))
            item = items[index]
            if item[1] == 1:  # a staff correction: the same step as set_occupancy
                value = item[3]
                corrected += value - occupancy
                occupancy = value
                if value > peak:
                    peak, peak_ts = value, item[0]
                continue
            delta = delta_of.get((item[2], item[3]), 0) * item[4]
            if delta >= 0:  # the same steps as apply
                occupancy += delta
                raw_net += delta
                entries += delta
                if occupancy > peak:
                    peak, peak_ts = occupancy, item[0]
            else:
                absorbed = max(0, -delta - occupancy)
                occupancy += delta + absorbed
                raw_net += delta
                corrected += absorbed
                exits -= delta
        self.counts = RoomCounts(
            self.day, occupancy, raw_net, corrected, entries, exits, peak,
            parse_ts(peak_ts) if peak_ts is not None else None,
        )  # fmt: skip
