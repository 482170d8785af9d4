"""Evaluate the camera counter on a recorded clip: crossing CSV parsing, matching and metrics.

Crossing files (PROTOCOL.md): ``#`` comment lines, then a ``frame,direction[,note]`` header and rows; ``frame`` is
the 0-based index of the frame where the person is on the line, ``direction`` is up/down or L->R/R->L.
A detection matches a reference crossing of the same direction within ``tolerance`` frames (10 by default),
each reference at most once, closest pairs first.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from footfall.counter.camera.geometry import DOWN, L2R, R2L, UP

logger = logging.getLogger(__name__)

DIRECTIONS = (UP, DOWN, L2R, R2L)
MATCH_TOLERANCE = 10


class CrossingFileError(ValueError):
    """A crossing CSV is malformed; the message names the line."""


@dataclass(frozen=True)
class Crossing:
    frame: int
    direction: str
    note: str = ""


@dataclass(frozen=True)
class DirectionScore:
    direction: str
    truth: int
    detected: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else (1.0 if not self.truth else 0.0)

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else (1.0 if not self.detected else 0.0)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def count_error(self) -> int:
        return self.detected - self.truth


def parse_crossings(text: str, source: str = "crossings") -> list[Crossing]:
    """Parse crossing CSV text (comments, header, rows); raise CrossingFileError naming the bad line."""
    rows: list[Crossing] = []
    header_seen = False
    for lineno, raw in enumerate(io.StringIO(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = next(csv.reader([line]))
        if not header_seen and fields and fields[0].strip().lower() == "frame":
            header_seen = True
            continue
        if len(fields) < 2:
            raise CrossingFileError(f"{source}:{lineno}: expected frame,direction[,note], got {line!r}")
        try:
            frame = int(fields[0].strip())
        except ValueError:
            raise CrossingFileError(f"{source}:{lineno}: frame {fields[0]!r} is not an integer") from None
        direction = fields[1].strip()
        if direction not in DIRECTIONS:
            raise CrossingFileError(
                f"{source}:{lineno}: direction {direction!r} is not one of {', '.join(DIRECTIONS)}"
            )
        if frame < 0:
            raise CrossingFileError(f"{source}:{lineno}: frame {frame} is negative")
        note = ",".join(fields[2:]).strip() if len(fields) > 2 else ""
        rows.append(Crossing(frame, direction, note))
    return rows


def read_crossings(path: str | Path) -> list[Crossing]:
    p = Path(path)
    return parse_crossings(p.read_text(encoding="utf-8"), source=str(p))


def format_crossings(crossings: Iterable[Crossing]) -> str:
    lines = ["frame,direction"]
    lines += [f"{c.frame},{c.direction}" for c in crossings]
    return "\n".join(lines) + "\n"


def match(
    detected: list[Crossing], truth: list[Crossing], tolerance: int = MATCH_TOLERANCE
) -> list[tuple[Crossing, Crossing]]:
    """Pairs (detection, reference) of the same direction within ``tolerance`` frames, each used once.

    For each direction, references in frame order each take the earliest free detection in their window:
    with equal windows this finds the largest possible number of pairs.
    """
    pairs = []
    for direction in {c.direction for c in truth}:
        refs = sorted((c for c in truth if c.direction == direction), key=lambda c: c.frame)
        dets = sorted((c for c in detected if c.direction == direction), key=lambda c: c.frame)
        k = 0
        for r in refs:
            while k < len(dets) and dets[k].frame < r.frame - tolerance:
                k += 1
            if k < len(dets) and dets[k].frame <= r.frame + tolerance:
                pairs.append((dets[k], r))
                k += 1
    return pairs


def score(
    detected: list[Crossing], truth: list[Crossing], tolerance: int = MATCH_TOLERANCE
) -> list[DirectionScore]:
    """Per-direction scores for every direction present in either list (in a fixed order)."""
    pairs = match(detected, truth, tolerance)
    present = {c.direction for c in detected} | {c.direction for c in truth}
    out = []
    for direction in DIRECTIONS:
        if direction not in present:
            continue
        out.append(
            DirectionScore(
                direction=direction,
                truth=sum(1 for c in truth if c.direction == direction),
                detected=sum(1 for c in detected if c.direction == direction),
                matched=sum(1 for d, _ in pairs if d.direction == direction),
            )
        )
    return out


def format_scores(scores: list[DirectionScore]) -> str:
    lines = []
    for s in scores:
        lines.append(
            f"{s.direction}: precision={s.precision:.3f} recall={s.recall:.3f} f1={s.f1:.3f} "
            f"count_error={s.count_error:+d} (detected {s.detected}, truth {s.truth}, matched {s.matched})"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def detect_crossings(frames: Iterable, counter) -> list[Crossing]:
    """Run ``counter`` (a CameraCounter) over (index, t, frame) triples; one row per person crossed."""
    found: list[Crossing] = []
    for index, t, frame in frames:
        for c in counter.process(frame, index, t):
            found.extend(Crossing(c.frame_index, c.geometric) for _ in range(c.count))
    for c in counter.finish():
        found.extend(Crossing(c.frame_index, c.geometric) for _ in range(c.count))
    found.sort(key=lambda c: c.frame)
    return found


def evaluate_video(
    path: str | Path,
    line: tuple[float, float, float, float],
    person_size: float | None = None,
    process_width: int = 320,
    size_model=None,
    status: dict | None = None,
) -> list[Crossing]:
    """Detect crossings in a video file. Raises counter.camera.sources.SourceError when it cannot be read.
    ``status``, when given, receives the counter's final person-size status."""
    from footfall.counter.camera.pipeline import CameraCounter
    from footfall.counter.camera.sources import SourceError, VideoSource

    decoded = 0

    def frames(source):
        nonlocal decoded
        for f in source:
            decoded += 1
            yield f.index, f.t, f.image

    with VideoSource(str(path), must_exist=True) as source:
        counter = CameraCounter(
            line, person_size=person_size, size_model=size_model, process_width=process_width
        )
        found = detect_crossings(frames(source), counter)
        if status is not None:
            status.update(counter.size_status())
    if not decoded:
        raise SourceError(f"cannot read video {path}: no frame could be decoded")
    logger.info("%s: %d frames, %d crossings", path, decoded, len(found))
    return found
