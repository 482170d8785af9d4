"""What the tracker works with: foreground blobs, tracks and crossings, and splitting one blob between the tracks
that share it. Pure: numpy only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Blob:
    """One foreground region: centroid, area and bounding box (x0, y0, x1, y1) in processing pixels."""

    cx: float
    cy: float
    area: float
    bbox: tuple[float, float, float, float]
    points: np.ndarray | None = None  # (N, 2) float x, y samples of the region's pixels, for splitting

    def bbox_distance(self, x: float, y: float) -> float:
        x0, y0, x1, y1 = self.bbox
        dx = max(x0 - x, 0.0, x - x1)
        dy = max(y0 - y, 0.0, y - y1)
        return math.hypot(dx, dy)


@dataclass(frozen=True)
class TrackCrossing:
    """A crossing found by the tracker: ``sign`` +1 toward the line's positive side, -1 toward the negative."""

    frame_index: int
    t: float
    sign: int
    track_id: int
    count: int = 1


@dataclass
class Track:
    id: int
    x: float
    y: float
    born_t: float
    last_t: float
    frame_index: int
    vx: float = 0.0
    vy: float = 0.0
    hits: int = 1
    streak: int = 1  # matched observations in a row, up to now
    missed: int = 0
    area: float = 0.0
    blob: int = -1  # index of the blob matched this frame (-1 = coasting)
    home: int = 0  # last side (-1/+1) the track stood firmly on; 0 = not known yet
    last_d: float = 0.0
    on_line: tuple[int, float, float, float] | None = None  # (frame, t, x, y) of the latest sign change of d
    counted: int = 0
    start: tuple[float, float] = (0.0, 0.0)
    trail: list[tuple[float, float]] = field(default_factory=list)
    areas: list[float] = field(default_factory=list)  # recent blob areas alone on their blob, in people there

    def predict(self, steps: int = 1) -> tuple[float, float]:
        return self.x + self.vx * steps, self.y + self.vy * steps


def split_blob(
    b: Blob, seeds: list[tuple[float, float]], iterations: int = 4
) -> list[tuple[float, float, float]]:
    """Split a blob shared by several tracks: k-means on its pixels seeded at the predicted positions."""
    k = len(seeds)
    pts = b.points
    if pts is None or len(pts) < k:
        return [(sx, sy, b.area / k) for sx, sy in seeds]
    centers = np.asarray(seeds, dtype=np.float64)
    labels = np.zeros(len(pts), dtype=np.int64)
    for _ in range(iterations):
        d2 = ((pts[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        labels = d2.argmin(axis=1)
        for j in range(k):
            sel = pts[labels == j]
            if len(sel):
                centers[j] = sel.mean(axis=0)
    scale = b.area / len(pts)
    return [
        (float(centers[j, 0]), float(centers[j, 1]), float((labels == j).sum() * scale)) for j in range(k)
    ]
