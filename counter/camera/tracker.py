"""Blob tracker and line-crossing counter for the camera counter. Pure: numpy only, no cv2, no I/O.

The pipeline turns each frame into foreground blobs (:class:`Blob`); :class:`Tracker` follows them and reports
line crossings. Every length is relative to the person size (the diameter of one person's blob, in processing
pixels) where it is measured: a :class:`SizeModel` gives it per position, so the same defaults work for any camera
height, tilt, lens and resolution.

Hard cases handled here:
- one person split into several blobs (striped clothing, a dark shirt on a dark floor): small unclaimed blobs next
  to a track are folded into its measurement instead of starting new tracks;
- two people merging into one blob (side by side, passing each other): tracks may share a blob, which is then split
  between them by k-means on its pixels seeded at the tracks' predicted positions;
- short occlusion or a missed detection: tracks coast on their velocity for ``max_coast_s`` seconds;
- U-turns and people standing on the line: a crossing needs the track to leave the hysteresis band on the side
  opposite to the one it last stood firmly on; a person who comes back counts the other way.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from footfall.counter.camera.geometry import CountingLine
from footfall.counter.camera.size_model import SizeModel
from footfall.counter.camera.tracks import Blob, Track, TrackCrossing, split_blob

__all__ = ["Blob", "Track", "TrackCrossing", "Tracker", "TrackerConfig"]

logger = logging.getLogger(__name__)


@dataclass
class TrackerConfig:
    """Tuning, all lengths as fractions of the person size."""

    gate: float = 0.6  # association gate (distance from predicted position to the blob's box)
    centroid_gate: float = 1.0  # ... and from the predicted position to the blob's centre
    max_jump: float = 0.6  # largest believable step of a track's measured centre beyond its predicted motion
    band: float = 0.3  # hysteresis band half width around the line
    min_area: float = 0.12  # smallest blob (fraction of one person's area) that can start a track
    fragment_radius: float = 0.75  # unclaimed blobs this close to a track are parts of it
    min_hits: int = 3  # matched observations before a track may count
    max_coast_s: float = 0.8  # seconds a track survives without a blob
    max_coast_frames: int = 12
    velocity_smoothing: float = 0.5
    segment_margin: float = 0.5  # a crossing may pass this far beyond the segment's ends
    trail_length: int = 32
    solid: float = 0.4  # a crossing needs the blob at least this share of the track's recent largest
    max_people_per_blob: int = 4
    ghost_s: float = 30.0  # how long a track lost on the line may be picked up again
    dedupe: float = 0.5  # two tracks on one blob closer than this are one person
    repeat_window_s: float = 0.6  # a same-direction crossing this soon after another ...
    repeat_distance: float = 0.6  # ... and this close along the line is the same person again
    still_frames: int = 8  # a track whose last this many positions ...
    still_radius: float = 0.1  # ... lie within this span is still
    still_blob_frames: int = 5  # a blob unchanged (centre within 1.5 px, area within 10%) this long is still


class Tracker:
    """Associates blobs frame to frame and reports line crossings (see module docstring)."""

    def __init__(
        self, line: CountingLine, person_size: float | SizeModel, config: TrackerConfig | None = None
    ):
        if not isinstance(person_size, SizeModel) and not person_size > 0:
            raise ValueError("person_size must be > 0")
        self.line = line
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._ghosts: list[Track] = []  # tracks lost inside the band, waiting for their person to move again
        self._crossing_pos: dict[tuple[int, int], float] = {}
        self._recent: list[
            tuple[float, int, float, float]
        ] = []  # t, sign, position along the line, reach (px)
        self._next_id = 1
        self._still_blobs: list[tuple[float, float, float, int]] = []  # cx, cy, area, frames seen unmoved
        self.set_person_size(person_size)

    def set_person_size(self, person_size: float | SizeModel) -> None:
        model = person_size if isinstance(person_size, SizeModel) else SizeModel.constant(person_size)
        self.model = model
        self.person_size = model.at(*self.line.midpoint)  # at the middle of the line, for reports
        self.person_area = math.pi / 4.0 * self.person_size**2

    def size_at(self, x: float, y: float) -> float:
        return self.model.at(x, y)

    def area_at(self, x: float, y: float) -> float:
        return math.pi / 4.0 * self.model.at(x, y) ** 2

    def side(self, d: float, x: float, y: float) -> int:
        """Hysteresis side of a point at signed distance ``d``: the band is sized by the person size on the line
        next to the point."""
        half = self.config.band * self.model.depth * self.size_at(*self.line.foot(x, y))
        return 1 if d > half else -1 if d < -half else 0

    def reset(self) -> None:
        """Forget every track (after a sudden light change, for instance)."""
        self.tracks = []
        self._ghosts = []

    # -- association ---------------------------------------------------------------------------------

    def update(self, blobs: list[Blob], frame_index: int, t: float) -> list[TrackCrossing]:
        cfg = self.config
        blobs = list(blobs)
        still_blob = self._mark_still(blobs)
        preds = [tr.predict() for tr in self.tracks]
        sizes = [self.size_at(*p) for p in preds]

        # Pass 1: one-to-one, cheapest pairs first.
        pairs = []
        for ti, tr in enumerate(self.tracks):
            px, py = preds[ti]
            ps = sizes[ti]
            speed = math.hypot(tr.vx, tr.vy)
            gate = cfg.gate * ps + 0.5 * speed
            for bi, b in enumerate(blobs):
                d_box = b.bbox_distance(px, py)
                d_c = math.hypot(b.cx - px, b.cy - py)
                if d_box > gate or d_c > cfg.centroid_gate * ps + speed:
                    continue
                pairs.append((d_box + 0.25 * d_c, ti, bi))
        # Tracks that have never moved (a lighting artefact at a pole, a bag on the floor) choose last: a walker
        # whose blob reaches them keeps the blob instead of handing part of it to the still track.
        still = [not self._has_moved(tr) for tr in self.tracks]
        pairs.sort(key=lambda p: (still[p[1]], p))
        track_blob: dict[int, int] = {}
        blob_tracks: dict[int, list[int]] = {}
        for _, ti, bi in pairs:
            if ti in track_blob or bi in blob_tracks:
                continue
            track_blob[ti] = bi
            blob_tracks[bi] = [ti]
        # Pass 2: a track left over whose prediction lies on an already claimed blob shares it (a merge).
        for _, ti, bi in pairs:
            if ti in track_blob or (still[ti] and not all(still[o] for o in blob_tracks.get(bi, ()))):
                continue
            if blobs[bi].bbox_distance(*preds[ti]) <= 0.25 * sizes[ti]:
                track_blob[ti] = bi
                blob_tracks.setdefault(bi, []).append(ti)

        measurements: dict[int, tuple[float, float, float]] = {}
        for bi, tis in blob_tracks.items():
            b = blobs[bi]
            if len(tis) == 1:
                measurements[tis[0]] = (b.cx, b.cy, b.area)
                self.tracks[tis[0]].blob = bi
            else:
                for ti in tis:
                    self.tracks[ti].blob = bi
                for ti, (mx, my, ma) in zip(tis, split_blob(b, [preds[ti] for ti in tis]), strict=True):
                    measurements[ti] = (mx, my, ma)

        # Unclaimed blobs: fragments of a matched track, or new tracks.
        new_blobs = []
        for bi, b in enumerate(blobs):
            if bi in blob_tracks:
                continue
            owner = None if still_blob[bi] else self._fragment_owner(b, measurements)
            if owner is not None:
                mx, my, ma = measurements[owner]
                tot = ma + b.area
                measurements[owner] = ((mx * ma + b.cx * b.area) / tot, (my * ma + b.cy * b.area) / tot, tot)
            elif b.area >= cfg.min_area * self.area_at(b.cx, b.cy):
                new_blobs.append(b)

        # A measurement far from the prediction is a different object (a shadow, a lighting artefact) that the
        # track's blob touched: coast instead of teleporting.
        for ti in list(measurements):
            tr = self.tracks[ti]
            px, py = preds[ti]
            mx, my, _ = measurements[ti]
            if math.hypot(mx - px, my - py) > cfg.max_jump * sizes[ti] + math.hypot(tr.vx, tr.vy):
                del measurements[ti]
        crossings: list[TrackCrossing] = []
        survivors: list[Track] = []
        for ti, tr in enumerate(self.tracks):
            if ti in measurements:
                mx, my, ma = measurements[ti]
                steps = max(1, tr.missed + 1)
                prev_frame, prev_t = tr.frame_index, tr.last_t
                a = cfg.velocity_smoothing
                ox, oy = tr.trail[-1] if tr.trail else (tr.x, tr.y)
                tr.vx = a * tr.vx + (1 - a) * (mx - ox) / steps
                tr.vy = a * tr.vy + (1 - a) * (my - oy) / steps
                tr.x, tr.y, tr.area = mx, my, ma
                tr.hits += 1
                tr.missed = 0
                tr.streak += 1
                tr.last_t = t
                tr.frame_index = frame_index
                tr.trail.append((mx, my))
                del tr.trail[: -cfg.trail_length]
                if len(blob_tracks.get(tr.blob, ())) == 1:
                    tr.areas.append(ma / self.area_at(mx, my))  # as a share of a person there
                    del tr.areas[:-8]
                found = self._check_crossing(tr, frame_index, t, prev_frame, prev_t)
                if found and len(blob_tracks.get(tr.blob, ())) == 1:
                    found = [replace(c, count=self._people_in(blobs[tr.blob])) for c in found]
                crossings.extend(found)
                survivors.append(tr)
            else:
                tr.blob = -1
                tr.missed += 1
                tr.streak = 0
                if tr.missed <= cfg.max_coast_frames and t - tr.last_t <= cfg.max_coast_s:
                    tr.x += tr.vx  # coast on the last velocity, slowing down
                    tr.y += tr.vy
                    tr.vx *= 0.8
                    tr.vy *= 0.8
                    survivors.append(tr)
                elif tr.hits >= cfg.min_hits and tr.home != 0 and self.side(tr.last_d, tr.x, tr.y) != tr.home:
                    self._ghosts.append(
                        tr
                    )  # lost near the line: a standing person fading into the background
        self._ghosts = [g for g in self._ghosts if t - g.last_t <= cfg.ghost_s]
        for b in new_blobs:
            survivors.append(self._new_track(b, frame_index, t))
        self.tracks = self._dedupe(survivors)
        return self._drop_repeats(crossings, t)

    def _drop_repeats(self, crossings: list[TrackCrossing], now: float) -> list[TrackCrossing]:
        """Drop a crossing that repeats one just counted at the same place (two tracks on one person), and count a
        group crossing as one blob only once: a blob of k people reaches k/2 widths either side of its centre, and
        people already counted there in the same direction just before are taken out of its count."""
        if not crossings and not self._recent:
            return crossings
        cfg = self.config
        kept = []
        for c in crossings:
            pos = self._crossing_pos.pop((c.track_id, c.frame_index), 0.0)
            ps = self._size_along(pos)
            reach = max(
                cfg.repeat_distance * ps, 0.5 * c.count * ps / self.model.depth if c.count > 1 else 0.0
            )
            seen = sum(
                1
                for t0, sign, p0, r0 in self._recent
                if sign == c.sign and abs(c.t - t0) <= cfg.repeat_window_s and abs(pos - p0) < max(reach, r0)
            )
            self._recent.append((c.t, c.sign, pos, reach))
            if seen >= c.count:
                logger.debug("dropped a repeated crossing by track %d at frame %d", c.track_id, c.frame_index)
            else:
                kept.append(replace(c, count=c.count - seen) if seen else c)
        # A ghost picked up again reports a crossing from up to ghost_s ago: remember that far back.
        self._recent = [r for r in self._recent if now - r[0] <= cfg.ghost_s + cfg.repeat_window_s]
        return kept

    def _mark_still(self, blobs: list[Blob]) -> list[bool]:
        """Which blobs have sat unchanged for a while (a lit pole, a screen, a bag): never a piece of a walker."""
        n = self.config.still_blob_frames
        memory = []
        marks = []
        for b in blobs:
            seen = 0
            for cx, cy, area, k in self._still_blobs:
                if abs(cx - b.cx) <= 1.5 and abs(cy - b.cy) <= 1.5 and abs(area - b.area) <= 0.1 * area:
                    seen = k
                    break
            memory.append((b.cx, b.cy, b.area, seen + 1))
            marks.append(seen + 1 >= n)
        self._still_blobs = memory
        return marks

    def _size_along(self, pos: float) -> float:
        t = pos / self.line.length
        return self.size_at(
            self.line.x1 + (self.line.x2 - self.line.x1) * t, self.line.y1 + (self.line.y2 - self.line.y1) * t
        )

    def _has_moved(self, tr: Track) -> bool:
        """False for a track that has sat on exactly one spot for the last frames: a lighting artefact at a pole
        or a bag on the floor, or a person standing still."""
        n = self.config.still_frames
        if len(tr.trail) < n:
            return True
        xs = [p[0] for p in tr.trail[-n:]]
        ys = [p[1] for p in tr.trail[-n:]]
        return max(max(xs) - min(xs), max(ys) - min(ys)) > self.config.still_radius * self.size_at(tr.x, tr.y)

    def _people_in(self, b: Blob) -> int:
        """How many people one blob that crosses alone holds: two side by side make a blob about twice as wide
        along the line and twice the area of one person; both must agree, with a margin."""
        ps = self.size_at(b.cx, b.cy)
        area = math.pi / 4.0 * ps * ps
        if b.points is None or len(b.points) < 8 or b.area < 1.6 * area:
            return 1
        dx, dy = self.line.x2 - self.line.x1, self.line.y2 - self.line.y1
        along = (b.points[:, 0] * dx + b.points[:, 1] * dy) / self.line.length
        lo, hi = np.percentile(along, [3, 97])
        by_width = int((hi - lo) * self.model.depth / ps + 0.3)  # one person is about ps/depth wide along it
        by_area = int(b.area / area + 0.3)
        return max(1, min(by_width, by_area, self.config.max_people_per_blob))

    def _fragment_owner(self, b: Blob, measurements: dict[int, tuple[float, float, float]]) -> int | None:
        cfg = self.config
        ps = self.size_at(b.cx, b.cy)
        if b.area >= 0.6 * math.pi / 4.0 * ps * ps:
            return None
        best, best_d = None, cfg.fragment_radius * ps
        for ti, (mx, my, _) in measurements.items():
            d = b.bbox_distance(mx, my)
            if d < best_d:
                best, best_d = ti, d
        return best

    def _new_track(self, b: Blob, frame_index: int, t: float) -> Track:
        tr = Track(
            id=self._next_id,
            x=b.cx,
            y=b.cy,
            born_t=t,
            last_t=t,
            frame_index=frame_index,
            area=b.area,
            start=(b.cx, b.cy),
            trail=[(b.cx, b.cy)],
        )
        self._next_id += 1
        d = self.line.signed_distance(b.cx, b.cy)
        tr.last_d = d
        tr.home = self.side(d, b.cx, b.cy)
        for g in self._ghosts:
            if math.hypot(g.x - b.cx, g.y - b.cy) <= self.config.fragment_radius * self.size_at(b.cx, b.cy):
                # The person who stood on the line moves again: carry on their track's story.
                tr.home, tr.on_line, tr.hits = g.home, g.on_line, g.hits
                tr.trail = [(g.x, g.y), (b.cx, b.cy)]
                tr.last_d = g.last_d
                tr.id = g.id
                self._ghosts.remove(g)
                break
        return tr

    def _dedupe(self, tracks: list[Track]) -> list[Track]:
        """Of two tracks on one blob close together (two tracks claimed one person), drop the one with the shorter
        unbroken run of matches (the younger one when they tie). Tracks moving opposite ways are two people
        passing, never one."""
        keep: list[Track] = []
        # The track that has followed its blob longest without a break keeps it: one that lost its person and
        # picked up the next one passing (a new arrival) must not take over that person's track.
        for tr in sorted(tracks, key=lambda tr: (-tr.streak, tr.id)):
            dup = False
            ps = self.size_at(tr.x, tr.y)
            limit = self.config.dedupe * ps
            for other in keep:
                if tr.blob < 0 or tr.blob != other.blob:
                    continue
                opposite = tr.vx * other.vx + tr.vy * other.vy < -((0.05 * ps) ** 2)
                if not opposite and math.hypot(tr.x - other.x, tr.y - other.y) < limit:
                    dup = True
                    if other.home == 0:
                        other.home = tr.home
                    break
            if not dup:
                keep.append(tr)
        return keep

    # -- counting ------------------------------------------------------------------------------------

    def _check_crossing(
        self, tr: Track, frame_index: int, t: float, prev_frame: int, prev_t: float
    ) -> list[TrackCrossing]:
        d = self.line.signed_distance(tr.x, tr.y)
        prev = tr.last_d
        if (prev < 0 <= d) or (prev >= 0 > d):
            # Interpolate the moment and place the centre was on the line.
            f = prev / (prev - d) if prev != d else 1.0
            px, py = tr.trail[-2] if len(tr.trail) >= 2 else (tr.x, tr.y)
            x = px + (tr.x - px) * f
            y = py + (tr.y - py) * f
            on_frame = round(prev_frame + (frame_index - prev_frame) * f)
            tr.on_line = (on_frame, prev_t + (t - prev_t) * f, x, y)
        tr.last_d = d
        side = self.side(d, tr.x, tr.y)
        if side == 0:
            return []
        if tr.home == 0:
            tr.home = side
            return []
        if side == tr.home or tr.hits < self.config.min_hits:
            return []
        if tr.areas and tr.area / self.area_at(tr.x, tr.y) < self.config.solid * max(tr.areas):
            return []  # the remains of someone fading into the background drift; wait for a whole blob
        tr.home = side
        if tr.on_line is None:
            return []
        on_frame, on_t, x, y = tr.on_line
        tr.on_line = None
        if not self.line.within_segment(x, y, self.config.segment_margin * self.size_at(x, y)):
            return []
        tr.counted += 1
        self._crossing_pos[(tr.id, on_frame)] = self.line.along(x, y) * self.line.length
        return [TrackCrossing(frame_index=on_frame, t=on_t, sign=side, track_id=tr.id)]
