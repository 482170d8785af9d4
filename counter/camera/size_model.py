"""Person size as a function of position in the frame, learned from the people the camera sees. Pure: numpy only.

Seen from a tilted camera, a person near it is several times larger than one far away. For people of one height
on a flat floor the apparent size is proportional to the distance from the horizon line, which is a linear
function of image position: ``diameter = a + b*y + c*x``. An overhead camera is the case ``b = c = 0``.

:class:`SizeLearner` finds that plane without knowing any size first. It links foreground blobs frame to frame by
overlap alone (no size-dependent gate), keeps the chains that behave like one walking person (seen for a while,
moved at least their own diameter, steady area, clear of the frame edge), and fits the plane to their sizes by
robust regression (Tukey biweight), each chain weighing the same however long it was seen, so merged groups and
fragments are outvoted. Its confidence grows with the number of people seen and falls with their spread around
the plane and when the samples do not reach both sides of the counting line.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

LEARNING, UNSURE, OK, FIXED = "learning", "unsure", "ok", "fixed"
MIN_FRACTION = 0.25  # the model never predicts less than this share of its largest size in the frame
# Pull of the slopes toward zero per unit of sample weight, in frame-sized units: a sample spread of a tenth of the
# frame (variance 0.01) keeps 90% of its slope; samples all on one row or column show no slope across it.
RIDGE = 1e-3
MIN_AGREEING = 0.6  # share of the few people seen that must agree with one size before it replaces the start


@dataclass(frozen=True)
class SizeModel:
    """Diameter of one person in pixels at (x, y): ``a + b*y + c*x``, floored at ``floor`` pixels. ``depth`` is a
    person's extent across the counting line as a share of that diameter (below 1 when a tilted view flattens
    people along the line of sight)."""

    a: float
    b: float = 0.0
    c: float = 0.0
    floor: float = 1.0
    depth: float = 1.0

    @classmethod
    def constant(cls, size: float) -> SizeModel:
        return cls(float(size), 0.0, 0.0, float(size))

    @classmethod
    def bounded(
        cls, a: float, b: float, c: float, frame_size: tuple[int, int], depth: float = 1.0
    ) -> SizeModel:
        """The plane, floored at MIN_FRACTION of its largest value over the frame (never zero or negative)."""
        w, h = frame_size
        corners = [a + b * y + c * x for x in (0, w) for y in (0, h)]
        floor = max(1.0, MIN_FRACTION * max(corners))
        return cls(float(a), float(b), float(c), float(floor), float(min(1.0, max(0.3, depth))))

    def at(self, x: float, y: float) -> float:
        return max(self.floor, self.a + self.b * y + self.c * x)

    def scaled(self, s: float) -> SizeModel:
        """The same model for frames scaled by ``s`` (processing pixels)."""
        return SizeModel(self.a * s, self.b, self.c, self.floor * s, self.depth)

    @property
    def is_constant(self) -> bool:
        return self.b == 0.0 and self.c == 0.0

    def to_config(self) -> dict[str, float]:
        return {
            "a": round(float(self.a), 3),
            "b": round(float(self.b), 5),
            "c": round(float(self.c), 5),
            "floor": round(float(self.floor), 2),
            "depth": round(float(self.depth), 3),
        }

    @classmethod
    def from_config(cls, data: dict) -> SizeModel:
        try:
            model = cls(float(data["a"]), float(data.get("b", 0.0)), float(data.get("c", 0.0)))
            floor = float(data.get("floor", 1.0))
            depth = float(data.get("depth", 1.0))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError("needs numbers a, b, c (diameter = a + b*y + c*x), floor and depth") from exc
        if not all(math.isfinite(v) for v in (model.a, model.b, model.c, floor, depth)):
            raise ValueError("a, b, c, floor and depth must be finite numbers")
        if floor <= 0 or not 0 < depth <= 1:
            raise ValueError("floor must be positive and depth between 0 and 1")
        return cls(model.a, model.b, model.c, floor, depth)


@dataclass
class _Chain:
    x: float
    y: float
    area: float
    bbox: tuple[float, float, float, float]
    start: tuple[float, float]
    samples: list[tuple[float, float, float, float]] = field(default_factory=list)  # x, y, diameter, depth
    seen: int = 1
    missed: int = 0
    travel: float = 0.0  # largest distance from the start


@dataclass
class SizeFit:
    model: (
        SizeModel  # the plane while ``state`` is ok; before that, one size for the whole frame (see usable)
    )
    plane: SizeModel
    confidence: float
    people: int  # chains that contributed
    spread: float  # robust relative spread of the sizes around the model
    state: str


@dataclass
class LearnerConfig:
    min_seen: int = 6  # frames a chain must be seen to count as a person
    min_travel: float = 1.0  # ... and diameters it must have moved
    max_area_change: float = 1.8  # a blob more than this many times larger or smaller is not the same thing
    max_jitter: float = 0.12  # median frame-to-frame change of a steady chain's diameter, relative
    refit_frames: int = 15
    max_samples: int = 4000
    samples_per_chain: int = 24
    people_for_ok: int = 6  # people seen for full confidence from the count alone
    min_people: int = 2


class SizeLearner:
    """Feed it each frame's blobs (centre, area, bbox in pixels); it keeps an up-to-date :class:`SizeFit`."""

    def __init__(self, frame_size: tuple[int, int], line, config: LearnerConfig | None = None):
        self.frame_size = frame_size
        self.line = line  # CountingLine in the same pixels as the blobs
        self.config = config or LearnerConfig()
        self._chains: list[_Chain] = []
        self._samples: deque[tuple[float, float, float, float]] = deque(maxlen=self.config.max_samples)
        self._people = 0
        self._since_fit = 0
        self._dirty = False
        self.fit: SizeFit | None = None

    @property
    def people(self) -> int:
        return self._people

    def observe(self, blobs) -> SizeFit | None:
        """``blobs``: objects with cx, cy, area, bbox. Returns the current fit (None until there is one)."""
        cfg = self.config
        w, h = self.frame_size
        taken: set[int] = set()
        order = sorted(range(len(blobs)), key=lambda i: -blobs[i].area)
        for ch in self._chains:
            best, best_iou = None, 0.15
            for i in order:
                if i in taken:
                    continue
                b = blobs[i]
                ratio = b.area / ch.area if ch.area > 0 else 0.0
                if not 1.0 / cfg.max_area_change <= ratio <= cfg.max_area_change:
                    continue
                iou = _iou(ch.bbox, b.bbox)
                if iou > best_iou:
                    best, best_iou = i, iou
            if best is None:
                ch.missed += 1
                continue
            taken.add(best)
            b = blobs[best]
            ch.x, ch.y, ch.area, ch.bbox = b.cx, b.cy, b.area, b.bbox
            ch.seen += 1
            ch.missed = 0
            ch.travel = max(ch.travel, math.hypot(b.cx - ch.start[0], b.cy - ch.start[1]))
            x0, y0, x1, y1 = b.bbox
            if x0 > 1 and y0 > 1 and x1 < w - 2 and y1 < h - 2:  # a blob cut by the frame edge is not whole
                dia = math.sqrt(4.0 * b.area / math.pi)
                ch.samples.append((b.cx, b.cy, dia, self._depth(b, dia)))
        alive = []
        for ch in self._chains:
            if ch.missed > 2 or ch.seen > 300:
                self._close(ch)
            else:
                alive.append(ch)
        for i, b in enumerate(blobs):
            if i not in taken:
                alive.append(_Chain(b.cx, b.cy, b.area, b.bbox, (b.cx, b.cy)))
        self._chains = alive
        self._since_fit += 1
        if self._dirty and self._since_fit >= cfg.refit_frames:
            self._refit()
        return self.fit

    def _depth(self, b, dia: float) -> float:
        """Extent across the line over the diameter, from the spread of the blob's pixels (4 standard
        deviations span a disc's diameter); NaN without pixel samples."""
        pts = getattr(b, "points", None)
        if pts is None or len(pts) < 8:
            return math.nan
        nx, ny = self.line.normal
        return 4.0 * float(np.std(pts[:, 0] * nx + pts[:, 1] * ny)) / dia

    def _walker_size(self, ch: _Chain) -> float | None:
        """The chain's median diameter if it behaves like one walking person, else None."""
        cfg = self.config
        if ch.seen < cfg.min_seen or len(ch.samples) < cfg.min_seen // 2:
            return None
        d = np.array([s[2] for s in ch.samples])
        med = float(np.median(d))
        # It must have moved while it was seen whole: a light at a pole that a passer-by's blob dragged along
        # for a few frames (cut by the frame edge, so not sampled) and that then sat still is no walker.
        xy = np.array([(s[0], s[1]) for s in ch.samples])
        moved = float(np.hypot(*(xy - xy[0]).T).max())
        if ch.travel < cfg.min_travel * med or moved < cfg.min_travel * med:
            return None  # something that stays put: a door leaf, a lamp, a person waiting
        # Steady: a walker's size changes smoothly (with perspective, steadily); fragments and merges jump.
        if len(d) >= 3 and float(np.median(np.abs(np.diff(d)))) > cfg.max_jitter * med:
            return None
        return med

    def provisional(self) -> float | None:
        """Before any fit: the median size of the walkers in view now (the first people need a size too)."""
        sizes = [m for ch in self._chains if ch.missed == 0 and (m := self._walker_size(ch)) is not None]
        return float(np.median(sizes)) if sizes else None

    def _close(self, ch: _Chain) -> None:
        cfg = self.config
        med = self._walker_size(ch)
        if med is None:
            return
        step = max(1, len(ch.samples) // cfg.samples_per_chain)
        chosen = ch.samples[::step]
        weight = 1.0 / len(chosen)
        for x, y, dia, depth in chosen:
            self._samples.append((x, y, dia, weight, depth, self._people))
        self._people += 1
        self._dirty = True

    def _refit(self) -> None:
        self._since_fit = 0
        self._dirty = False
        if self._people < self.config.min_people:
            return
        s = np.array(self._samples, dtype=np.float64)
        seen_at = s[:, :2]  # where the people were seen, for the coverage of the line's sides
        coef, _ = _robust_plane(s[:, 0], s[:, 1], s[:, 2], s[:, 3], self.frame_size)
        # A walker is partly hidden (by the frame or mask edge, a door, the floor's own colour) more often than
        # merged with someone: of each walker's views, the larger ones for where they were are the truer ones.
        # Keep each walker's half above the first plane, then fit again.
        resid = s[:, 2] - (coef[0] + coef[1] * s[:, 1] + coef[2] * s[:, 0])
        keep = np.zeros(len(s), dtype=bool)
        for person in np.unique(s[:, 5]):
            mine = s[:, 5] == person
            keep |= mine & (resid >= np.median(resid[mine]))
        s = s[keep]
        s[:, 3] = s[:, 3] * 2.0  # each walker kept half its samples: it still weighs one
        x, y, d, wt = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        coef, resid_scale = _robust_plane(x, y, d, wt, self.frame_size)
        depths = s[:, 4][np.isfinite(s[:, 4])]
        depth = float(np.median(depths)) if len(depths) else 1.0
        plane = SizeModel.bounded(coef[0], coef[1], coef[2], self.frame_size, depth)
        at_line = plane.at(*self.line.midpoint)
        spread = resid_scale / max(at_line, 1e-6)
        confidence = self._confidence(spread, seen_at[:, 0], seen_at[:, 1])
        if confidence >= 0.5 and self._people >= self.config.people_for_ok:
            model, state = plane, OK
        else:
            # Too few people for a slope: one robust size for the frame, the median of what was seen.
            order = np.argsort(d)
            cum = np.cumsum(wt[order])
            median = float(d[order][np.searchsorted(cum, cum[-1] / 2.0)])
            model, state = SizeModel(median, 0.0, 0.0, median, depth), UNSURE
            if self._agreeing(s, model) < MIN_AGREEING:
                # Two or three walkers of very different sizes (a person and a fragment that walked): no size
                # yet is better than a coin toss between them; the counter keeps its starting size meanwhile.
                logger.debug("person sizes disagree among %d people: still learning", self._people)
                return
        self.fit = SizeFit(model, plane, confidence, self._people, spread, state)
        model = plane
        logger.debug(
            "person size %.1f px at the line (%.3f/px in y, %.3f/px in x) from %d people, confidence %.2f",
            at_line,
            model.b,
            model.c,
            self._people,
            self.fit.confidence,
        )

    @staticmethod
    def _agreeing(s: np.ndarray, model: SizeModel) -> float:
        """Share of the people (not samples) whose median size is within 40% of ``model`` where they were."""
        ratios = []
        for person in np.unique(s[:, 5]):
            mine = s[s[:, 5] == person]
            ratios.append(float(np.median(mine[:, 2] / [model.at(x, y) for x, y in mine[:, :2]])))
        r = np.array(ratios)
        return float(np.mean((r > 1 / 1.4) & (r < 1.4))) if len(r) else 0.0

    def _confidence(self, spread: float, x: np.ndarray, y: np.ndarray) -> float:
        by_count = 1.0 - math.exp(-self._people / (self.config.people_for_ok / 2.0))
        by_spread = min(1.0, max(0.0, (0.6 - spread) / 0.4))
        sides = np.sign([self.line.signed_distance(xi, yi) for xi, yi in zip(x, y, strict=True)])
        both = min(np.mean(sides > 0), np.mean(sides < 0))
        by_cover = 1.0 if both >= 0.15 else 0.6  # extrapolating across the line is a guess
        return round(by_count * by_spread * by_cover, 3)


def _iou(a, b) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area_a + area_b - inter)


def _robust_plane(x, y, d, wt, frame_size, iterations: int = 8) -> tuple[np.ndarray, float]:
    """Weighted Tukey-biweight fit of d = a + b*y + c*x; returns (a, b, c) and the robust residual scale.

    The slopes are very lightly pulled toward zero (ridge) so that samples along one row or column, which cannot
    show a slope in the other direction, give none. The pull is relative to the samples' total weight and tiny: a
    fixed pull worth a few people shrank a true perspective slope to a quarter when each person was seen over part of
    the frame only (their spread in y is what shows the slope), and the biggest-half step after it shrank it more."""
    w, h = frame_size
    xs, ys = (x - w / 2) / w, (y - h / 2) / h  # centred and scaled so one ridge weight suits both slopes
    design = np.column_stack([np.ones_like(xs), ys, xs])
    ridge = np.diag([0.0, 1.0, 1.0]) * RIDGE
    rw = np.ones_like(d)
    scale = float(np.median(np.abs(d - np.median(d)))) * 1.4826 + 1e-6
    beta = np.array([np.median(d), 0.0, 0.0])
    for _ in range(iterations):
        ww = wt * rw
        a_mat = design.T @ (design * ww[:, None]) + ridge * float(ww.sum())
        beta = np.linalg.solve(a_mat, design.T @ (ww * d))
        r = d - design @ beta
        scale = float(np.median(np.abs(r))) * 1.4826 + 1e-6
        u = r / (4.685 * scale)
        rw = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
    a0, by, bx = beta
    # back to pixels: d = a0 + by*(y - h/2)/h + bx*(x - w/2)/w
    b = by / h
    c = bx / w
    a = a0 - by / 2 - bx / 2
    return np.array([a, b, c]), scale
