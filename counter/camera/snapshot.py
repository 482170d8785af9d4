"""Installer check: render the line, in side, mask, tracks and counts on a still or a short clip.

This is the only place where camera pixels are written anywhere, and only when an installer runs
``footfall counter snapshot`` explicitly. The counting service never calls it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from footfall.counter.camera.geometry import IN, OUT
from footfall.counter.camera.pipeline import CameraCounter
from footfall.counter.camera.sources import FrameSource

logger = logging.getLogger(__name__)

STILL_SUFFIXES = {".png", ".jpg", ".jpeg"}
CLIP_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG"}

LINE_COLOUR = (0, 255, 255)
IN_COLOUR = (0, 200, 0)
MASK_COLOUR = (255, 128, 0)
TRACK_COLOUR = (255, 0, 255)
SIZE_COLOUR = (200, 200, 200)


class SnapshotError(ValueError):
    """Bad output path or nothing to render."""


@dataclass(frozen=True)
class SnapshotResult:
    path: Path
    frames: int
    counts: dict[str, int]


def check_output(path: str | Path) -> Path:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in STILL_SUFFIXES and suffix not in CLIP_SUFFIXES:
        raise SnapshotError(f"output must end in .png, .jpg, .mp4 or .avi, got {p.name!r}")
    return p


def annotate(frame: np.ndarray, counter: CameraCounter, mask_polygon=None) -> np.ndarray:
    """A copy of ``frame`` with the counting line, in arrow, mask, tracks, person size and counts drawn on it."""
    img = frame.copy()
    line = counter.frame_line
    p1 = (round(line.x1), round(line.y1))
    p2 = (round(line.x2), round(line.y2))
    thick = max(1, round(img.shape[1] / 320))
    if mask_polygon is not None:
        pts = np.round(np.asarray(mask_polygon, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
        cv2.polylines(img, [pts], True, MASK_COLOUR, thick)
    cv2.line(img, p1, p2, LINE_COLOUR, thick + 1)
    nx, ny = line.normal
    mx, my = (line.x1 + line.x2) / 2, (line.y1 + line.y2) / 2
    reach = 0.12 * math.hypot(*img.shape[1::-1])
    sign = counter.in_sign
    tip = (round(mx + sign * nx * reach), round(my + sign * ny * reach))
    cv2.arrowedLine(img, (round(mx), round(my)), tip, IN_COLOUR, thick + 1, tipLength=0.3)
    cv2.putText(img, "in", (tip[0] + 4, tip[1]), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, IN_COLOUR, thick)
    scale = getattr(counter, "scale", 1.0) or 1.0
    for tr in counter.tracks:
        pts = np.round(np.asarray(tr.trail, dtype=np.float64) / scale).astype(np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, TRACK_COLOUR, thick)
        centre = (round(tr.x / scale), round(tr.y / scale))
        cv2.circle(img, centre, 3 * thick, TRACK_COLOUR, -1)
        cv2.putText(
            img,
            str(tr.id),
            (centre[0] + 5, centre[1] - 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            TRACK_COLOUR,
            thick,
        )
    draw_sizes(img, counter, thick)
    _label(
        img, f"in {counter.counts[IN]}  out {counter.counts[OUT]}", (6, 18 * thick), thick, (255, 255, 255)
    )
    size = counter.size_status()
    text, colour = size_label(size)
    _label(img, text, (6, img.shape[0] - 8 * thick), thick, colour)
    return img


def size_label(size: dict) -> tuple[str, tuple[int, int, int]]:
    """The person-size line of the still: how the size is known, and a warning colour when it is not sure."""
    state = size["state"]
    if state == "fixed":
        return "person size: set", (255, 255, 255)
    text = f"person size: {state} {size['confidence']:.2f} ({size['people']} people)"
    if state == "ok":
        return text, (120, 255, 120)
    return text.replace(state, state.upper() + " - counts may be wrong", 1), (60, 60, 255)


def _label(img: np.ndarray, text: str, at: tuple[int, int], thick: int, colour) -> None:
    cv2.putText(img, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thick, (0, 0, 0), thick + 2)
    cv2.putText(img, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thick, colour, thick)


def size_places(counter: CameraCounter, frame_size: tuple[int, int]) -> list[tuple[float, float]]:
    """Where the still shows the person size: both ends and the middle of the line, and a row nearer and
    farther than the line (a quarter of the frame away), where they are inside the frame."""
    w, h = frame_size
    line = counter.frame_line
    nx, ny = line.normal
    reach = 0.25 * min(w, h)
    places = []
    for t in (0.15, 0.5, 0.85):
        x = line.x1 + (line.x2 - line.x1) * t
        y = line.y1 + (line.y2 - line.y1) * t
        for k in (0.0, -1.0, 1.0):
            px, py = x + k * nx * reach, y + k * ny * reach
            if 0 <= px < w and 0 <= py < h:
                places.append((px, py))
    return places


def draw_sizes(img: np.ndarray, counter: CameraCounter, thick: int) -> None:
    """Grey circles one person wide at several places: compare them with the people in view."""
    model = counter.size_model
    if model is None:
        return
    for x, y in size_places(counter, (img.shape[1], img.shape[0])):
        r = max(2, round(model.at(x, y) / 2))
        cv2.circle(img, (round(x), round(y)), r, SIZE_COLOUR, thick)


def render(
    source: FrameSource, counter: CameraCounter, out: str | Path, frames: int = 1, mask_polygon=None
) -> SnapshotResult:
    """Run ``counter`` over up to ``frames`` frames of ``source`` and write the annotated still or clip."""
    path = check_output(out)
    if frames < 1:
        raise SnapshotError("frames must be at least 1")
    suffix = path.suffix.lower()
    writer = None
    last = None
    n = 0
    try:
        for frame in source:
            counter.process(frame.image, frame.index, frame.t)
            last = annotate(frame.image, counter, mask_polygon)
            if suffix in CLIP_SUFFIXES:
                if writer is None:
                    h, w = last.shape[:2]
                    fps = getattr(source, "fps", 15.0) or 15.0
                    writer = cv2.VideoWriter(
                        str(path), cv2.VideoWriter_fourcc(*CLIP_SUFFIXES[suffix]), fps, (w, h)
                    )
                    if not writer.isOpened():
                        raise SnapshotError(f"cannot write a video to {path}")
                writer.write(last)
            n += 1
            if n >= frames:
                break
            last_image = frame.image
    finally:
        if writer is not None:
            writer.release()
    if last is not None and counter.finish():  # the tracker ran behind while learning: show its final count
        last = annotate(last_image, counter, mask_polygon)
    if last is None:
        raise SnapshotError("the source gave no frames")
    if suffix in STILL_SUFFIXES and not cv2.imwrite(str(path), last):
        raise SnapshotError(f"cannot write an image to {path}")
    logger.info("installer snapshot written to %s (%d frames)", path, n)
    return SnapshotResult(path, n, dict(counter.counts))
