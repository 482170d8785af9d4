"""CameraCounter: frames in, crossing events out.

Each frame is shrunk to ``process_width``, run through MOG2 background subtraction (shadows dropped), cleaned with
morphology sized from the person size, cut into blobs, and handed to the pure :class:`Tracker`. Frames are never
stored or written anywhere: only crossing events leave this object (see ``snapshot`` for the installer's
explicit exception).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from footfall.counter.camera.geometry import IN, OUT, CountingLine
from footfall.counter.camera.size_model import FIXED, LEARNING, OK, SizeFit, SizeLearner, SizeModel
from footfall.counter.camera.tracker import Blob, Tracker, TrackerConfig

logger = logging.getLogger(__name__)

DEFAULT_PERSON_FRACTION = (
    0.22  # default person size as a fraction of the frame diagonal (overhead door camera)
)


@dataclass(frozen=True)
class CameraCrossing:
    frame_index: int
    t: float
    direction: str  # 'in' / 'out'
    geometric: str  # 'up' / 'down' / 'L->R' / 'R->L'
    count: int = 1


@dataclass
class PipelineConfig:
    """Image-side tuning; lengths are fractions of the person size unless named otherwise."""

    history_s: float = 30.0  # background memory, seconds (converted to frames with the observed frame rate)
    var_threshold: float = 16.0
    open_kernel: float = 0.04
    close_kernel: float = 0.14
    burst_fraction: float = 0.45  # foreground share of the watched area that means "the light changed"
    settle_frames: int = 5  # frames of fast relearning after a light change
    min_person_px: int = 24  # people at least twice this wide are segmented at half the processing size
    max_points: int = 600  # pixel samples per blob kept for splitting merged people
    auto_person_size: bool = True  # learn the person size over the frame from the people seen (size_model.py)
    learn_min_area: float = 0.0005  # smallest blob, as a share of the frame, the size learner looks at
    learning_delay_s: float = 4.0  # how far the tracker runs behind the size learner until the size is sure
    busy_learning: float | None = (
        None  # learning rate in units of 1/history while people are tracked (None: auto)
    )
    lighting_check: bool = True  # drop foreground whose texture matches the background (light, shadow)
    lighting_ncc: float = 0.7  # correlation with the background above which a cell is "same surface"
    lighting_cell: float = 0.1  # cell size for that test
    lighting_min_std: float = 3.0  # grey levels of texture needed to judge a cell
    background_refresh: int = 5  # frames between background image refreshes for the lighting test


def background_subtractor(history: int, var_threshold: float):
    """The MOG2 the pipeline segments with (bench/camera.py times the same one as its baseline)."""
    mog = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold, detectShadows=True)
    # Three Gaussians per pixel instead of five: a view of a doorway has a floor and perhaps a door or a shadow,
    # not five surfaces; ~10% faster, same counts on the synthetic clips and bus.avi.
    mog.setNMixtures(3)
    return mog


class CameraCounter:
    """Counts people crossing ``line`` in a stream of BGR frames.

    ``line`` is (x1, y1, x2, y2) in frame pixels. ``in_side`` names the side where "in" is, or equivalently the
    direction of an inward crossing: ``up``/``top`` or ``down``/``bottom`` for a line more horizontal than vertical,
    ``L->R``/``right`` or ``R->L``/``left`` otherwise; ``None`` means crossings toward larger y (or larger x) are
    in. ``person_size`` is the diameter of one person seen from the camera, in frame pixels, the same everywhere;
    ``size_model`` a :class:`SizeModel` (frame pixels) from ``calibrate``; with neither, the counter starts from 22%
    of the frame diagonal and learns the size over the frame from the people it sees (``size_status`` tells how
    sure it is). ``mask`` is a polygon [(x, y), ...] in frame pixels (or a uint8 image the size of the frame) of
    the region to watch.
    """

    def __init__(
        self,
        line: tuple[float, float, float, float],
        in_side: str | None = None,
        frame_size: tuple[int, int] | None = None,
        person_size: float | None = None,
        size_model: SizeModel | None = None,
        mask=None,
        process_width: int = 320,
        config: PipelineConfig | None = None,
        tracker_config: TrackerConfig | None = None,
    ):
        self.frame_line = CountingLine.from_tuple(line)
        self.in_sign = 1 if in_side is None else self.frame_line.side_sign(in_side)
        if person_size is not None and not person_size > 0:
            raise ValueError("person_size must be a positive number of pixels")
        if process_width is not None and process_width < 16:
            raise ValueError("process_width must be at least 16 pixels")
        self.fixed_person_size = person_size
        self.fixed_model = size_model
        self.mask_spec = mask
        self.process_width = process_width
        self.config = config or PipelineConfig()
        self.tracker_config = tracker_config or TrackerConfig()
        self.frame_size: tuple[int, int] | None = None
        self.counts = {IN: 0, OUT: 0}
        self.light_changes = 0
        self._tracker: Tracker | None = None
        if frame_size is not None:
            self._setup(int(frame_size[0]), int(frame_size[1]))

    # -- setup ---------------------------------------------------------------------------------------

    def _setup(self, w: int, h: int) -> None:
        self.frame_size = (w, h)
        pw = w if not self.process_width or self.process_width >= w else int(self.process_width)
        self.scale = pw / w
        self.proc_size = (pw, max(1, round(h * self.scale)))
        self.line = self.frame_line.scaled(self.scale, self.proc_size[1] / h)
        diag = math.hypot(*self.proc_size)
        self.default_person = DEFAULT_PERSON_FRACTION * diag
        if self.fixed_person_size:
            model = SizeModel.constant(self.fixed_person_size * self.scale)
        elif self.fixed_model is not None:
            model = self.fixed_model.scaled(self.scale)
        else:
            model = SizeModel.constant(self.default_person)
        self._learner = None
        if self.config.auto_person_size and not self.fixed_person_size and self.fixed_model is None:
            self._learner = SizeLearner(self.proc_size, self.line)
        self._fit: SizeFit | None = None
        self._pending: deque = deque()  # (blobs, frame index, t) waiting for the tracker
        self._tracker = Tracker(self.line, model, self.tracker_config)
        ps = self._tracker.person_size
        self._mask = self._build_mask()
        self._mask_area = (
            float(np.count_nonzero(self._mask)) if self._mask is not None else pw * self.proc_size[1]
        )
        self._mog = self._new_subtractor(fps=15.0)
        self._settle = 0
        self._bg_stats = None
        self._bg_age = 0
        self._last_t: float | None = None
        self._dt = deque(maxlen=30)
        self._kernels_for(ps)

    def _new_subtractor(self, fps: float):
        history = int(max(50, min(2000, self.config.history_s * fps)))
        return background_subtractor(history, self.config.var_threshold)

    def _kernels_for(self, ps: float) -> None:
        """Morphology and cell sizes for people ``ps`` processing pixels wide on the line. Masks are cleaned and
        cut into blobs at half the processing size when people are big enough there."""
        self._kernel_ps = ps
        self._f = 2 if ps >= 2 * self.config.min_person_px else 1
        self._mask_size = (self.proc_size[0] // self._f, self.proc_size[1] // self._f)
        ps = ps / self._f

        def k(frac: float) -> np.ndarray:
            size = max(3, int(round(frac * ps)) | 1)
            return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))

        cell = max(4, int(round(self.config.lighting_cell * ps)))
        self._cells = (max(1, self._mask_size[0] // cell), max(1, self._mask_size[1] // cell))
        self._bg_stats = None
        self._open_k = k(self.config.open_kernel)
        self._close_k = k(self.config.close_kernel)

    def _build_mask(self) -> np.ndarray | None:
        spec = self.mask_spec
        if spec is None:
            return None
        pw, ph = self.proc_size
        if isinstance(spec, np.ndarray) and spec.ndim == 2:
            m = cv2.resize(spec.astype(np.uint8), (pw, ph), interpolation=cv2.INTER_NEAREST)
            return np.where(m > 0, 255, 0).astype(np.uint8)
        pts = np.asarray(spec, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            raise ValueError("a mask polygon needs at least three points")
        pts = np.round(pts * [self.scale, ph / self.frame_size[1]]).astype(np.int32)
        m = np.zeros((ph, pw), np.uint8)
        cv2.fillPoly(m, [pts], 255)
        return m

    @property
    def person_size(self) -> float | None:
        """Current person size at the middle of the line, in frame pixels."""
        return None if self._tracker is None else self._tracker.person_size / self.scale

    @property
    def size_model(self) -> SizeModel | None:
        """The person size model in use, in frame pixels."""
        return None if self._tracker is None else self._tracker.model.scaled(1.0 / self.scale)

    def size_status(self) -> dict:
        """How the person size is known: ``state`` fixed (given), learning (too few people seen yet), unsure or
        ok, with the learner's ``confidence`` (0-1), the ``people`` it learned from and the size at the line."""
        if self._tracker is None:
            given = self.fixed_person_size or self.fixed_model is not None
            return {"state": FIXED if given else LEARNING, "confidence": 1.0 if given else 0.0, "people": 0}
        status = {"size_at_line": round(self.person_size, 1)}
        if self._learner is None:
            return {"state": FIXED, "confidence": 1.0, "people": 0, **status}
        fit = self._fit
        if fit is None:
            return {"state": LEARNING, "confidence": 0.0, "people": self._learner.people, **status}
        return {"state": fit.state, "confidence": fit.confidence, "people": fit.people, **status}

    @property
    def tracks(self):
        """Live tracks (positions in processing pixels; divide by ``scale`` for frame pixels)."""
        return [] if self._tracker is None else list(self._tracker.tracks)

    # -- per frame -----------------------------------------------------------------------------------

    def process(self, frame_bgr: np.ndarray, frame_index: int, t: float) -> list[CameraCrossing]:
        if frame_bgr is None:
            return []
        if self._tracker is None:
            h, w = frame_bgr.shape[:2]
            self._setup(w, h)
        self._observe_rate(t)
        fg = self.foreground(frame_bgr)
        if fg is None:
            return []
        blobs = self._blobs(fg)
        if self._learner is not None:
            self._learn(blobs)
        # While the size is still being learned, the tracker works a few seconds behind on the blobs (never on
        # images), so that the first people are counted with the size their passing taught.
        self._pending.append((blobs, frame_index, t))
        delay = self.config.learning_delay_s if self._fit is None or self._fit.state != OK else 0.0
        return self._track(lambda queued_t: t - queued_t >= delay)

    def finish(self) -> list[CameraCrossing]:
        """At the end of a stream: let the tracker catch up on the blobs it has not seen yet."""
        return [] if self._tracker is None else self._track(lambda _t: True)

    def _track(self, due) -> list[CameraCrossing]:
        found = []
        while self._pending and due(self._pending[0][2]):
            b, i, ti = self._pending.popleft()
            found += self._tracker.update(self._for_tracker(b), i, ti)
        out = []
        for c in found:
            direction = IN if c.sign == self.in_sign else OUT
            self.counts[direction] += c.count
            out.append(
                CameraCrossing(c.frame_index, c.t, direction, self.line.direction_name(c.sign), c.count)
            )
        return out

    def _observe_rate(self, t: float) -> None:
        if self._last_t is not None and t > self._last_t:
            self._dt.append(t - self._last_t)
            if len(self._dt) == 10:
                fps = 1.0 / float(np.median(self._dt))
                self._mog.setHistory(int(max(50, min(2000, self.config.history_s * fps))))
        self._last_t = t

    def foreground(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """Cleaned foreground mask at processing size, or None while relearning after a light change."""
        img = frame_bgr
        if img.shape[1] != self.proc_size[0] or img.shape[0] != self.proc_size[1]:
            img = cv2.resize(img, self.proc_size, interpolation=cv2.INTER_AREA)
        if self._settle > 0:
            self._settle -= 1
            self._mog.apply(img, learningRate=0.5)
            return None
        # While people are tracked, learn slowly so that someone standing still stays foreground longer.
        rate = -1.0
        if self.config.busy_learning and any(
            tr.hits >= self.tracker_config.min_hits for tr in self._tracker.tracks
        ):
            rate = self.config.busy_learning / self._mog.getHistory()
        raw = self._mog.apply(img, learningRate=rate)
        _, fg = cv2.threshold(raw, 200, 255, cv2.THRESH_BINARY)  # 127 = shadow
        if self._mask is not None:
            fg = cv2.bitwise_and(fg, self._mask)
        if cv2.countNonZero(fg) > self.config.burst_fraction * self._mask_area:
            logger.info("sudden light change: relearning the background")
            self.light_changes += 1
            self._mog.apply(img, learningRate=1.0)
            self._settle = self.config.settle_frames
            self._tracker.reset()
            self._pending.clear()
            self._bg_stats = None
            return None
        if self._f > 1:
            fg = cv2.resize(fg, self._mask_size, interpolation=cv2.INTER_AREA)
            _, fg = cv2.threshold(fg, 100, 255, cv2.THRESH_BINARY)
        if self.config.lighting_check and cv2.countNonZero(fg):
            fg = self._drop_lighting(img, fg)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._open_k)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._close_k)
        return fg

    def _cell_stats(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = cv2.resize(gray, self._cells, interpolation=cv2.INTER_AREA)
        sq = cv2.resize(gray * gray, self._cells, interpolation=cv2.INTER_AREA)
        return mean, np.maximum(sq - mean * mean, 0.0)

    def _small_gray(self, img: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
        if self._f > 1:
            gray = cv2.resize(gray, self._mask_size, interpolation=cv2.INTER_AREA)
        return gray.astype(np.float32)

    def _drop_lighting(self, img: np.ndarray, fg: np.ndarray) -> np.ndarray:
        """Clear foreground cells whose texture correlates with the background: a light change or a shadow
        alters brightness but keeps the surface's pattern, a person replaces it."""
        if self._bg_stats is None or self._bg_age >= self.config.background_refresh:
            bg = self._mog.getBackgroundImage()
            if bg is None:
                return fg
            bg_gray = self._small_gray(bg)
            self._bg_stats = (bg_gray, *self._cell_stats(bg_gray))
            self._bg_age = 0
        self._bg_age += 1
        bg_gray, mb, vb = self._bg_stats
        gray = self._small_gray(img)
        mi, vi = self._cell_stats(gray)
        cov = cv2.resize(gray * bg_gray, self._cells, interpolation=cv2.INTER_AREA) - mi * mb
        min_var = self.config.lighting_min_std**2
        same = (cov > self.config.lighting_ncc * np.sqrt(vi * vb)) & (vi > min_var) & (vb > min_var)
        if not same.any():
            return fg
        drop = cv2.resize(same.astype(np.uint8), self._mask_size, interpolation=cv2.INTER_NEAREST)
        fg[drop > 0] = 0
        return fg

    def _blobs(self, fg: np.ndarray) -> list[Blob]:
        """All but the tiniest foreground regions, with pixel samples for splitting merged people."""
        n, labels, stats, cents = cv2.connectedComponentsWithStats(fg, connectivity=8)
        f = self._f
        floor = self.config.learn_min_area * self.proc_size[0] * self.proc_size[1]
        off = (f - 1) / 2.0  # centre of a mask pixel, in processing pixels
        blobs = []
        for j in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[j])
            a = float(area * f * f)
            if a < floor:
                continue
            step = max(1, int(math.sqrt(area / self.config.max_points)))
            sub = labels[y : y + h : step, x : x + w : step] == j
            ys, xs = np.nonzero(sub)
            pts = np.column_stack((xs * step + x, ys * step + y)).astype(np.float64) * f + off
            box = (x * f, y * f, (x + w) * f - 1, (y + h) * f - 1)
            blobs.append(Blob(float(cents[j, 0] * f + off), float(cents[j, 1] * f + off), a, box, pts))
        return blobs

    def _for_tracker(self, blobs: list[Blob]) -> list[Blob]:
        """Blobs big enough to be part of a person where they are."""
        tr = self._tracker
        k = 0.5 * self.tracker_config.min_area
        return [b for b in blobs if b.area >= k * tr.area_at(b.cx, b.cy)]

    def _learn(self, shapes: list[Blob]) -> None:
        """Feed the size learner; when its fit changes, size the tracker and the morphology from it. The
        morphology follows only sure fits and big changes (15%), so the estimate does not chase its own
        cleaning."""
        fit = self._learner.observe(shapes)
        if fit is None or fit is self._fit:
            return
        self._fit = fit
        self._tracker.set_person_size(fit.model)
        ps = self._tracker.person_size
        logger.info(
            "person size now %.0f px at the line (%s, confidence %.2f, %d people)",
            ps / self.scale,
            fit.state,
            fit.confidence,
            fit.people,
        )
        # Only a sure fit resizes the morphology: an early guess must not reshape the blobs it learns from.
        if fit.state == OK and abs(ps - self._kernel_ps) > 0.15 * self._kernel_ps:
            self._kernels_for(ps)
