"""Camera health: no frames, frozen frames, too dark. Pure: the caller feeds frames and timestamps.

``CameraHealth().feed(frame_or_None, t)`` returns ``"ok"``, ``"no_frames"``, ``"frozen"`` or ``"dark"``.
A state is reported only after it has lasted its grace period, so one dropped or black frame is not an alarm.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

OK, NO_FRAMES, FROZEN, DARK = "ok", "no_frames", "frozen", "dark"


class CameraHealth:
    def __init__(
        self,
        no_frames_after_s: float = 5.0,
        frozen_after_s: float = 10.0,
        dark_after_s: float = 10.0,
        dark_level: float = 12.0,
        frozen_diff: float = 0.05,
    ):
        """``dark_level``: mean grey level (0-255) below which a frame is dark. ``frozen_diff``: mean absolute
        difference (grey levels, on a thumbnail) below which two frames are the same picture; live sensors
        always add some noise, a stuck pipeline repeats the exact bytes."""
        self.no_frames_after_s = no_frames_after_s
        self.frozen_after_s = frozen_after_s
        self.dark_after_s = dark_after_s
        self.dark_level = dark_level
        self.frozen_diff = frozen_diff
        self._start: float | None = None
        self._last_frame_t: float | None = None
        self._thumb: np.ndarray | None = None
        self._same_since: float | None = None
        self._dark_since: float | None = None
        self.state = OK

    def feed(self, frame: np.ndarray | None, t: float) -> str:
        if self._start is None:
            self._start = t
        if frame is None:
            since = self._last_frame_t if self._last_frame_t is not None else self._start
            if t - since >= self.no_frames_after_s:
                return self._set(NO_FRAMES, t)
            return self._set(self._steady_state(t), t)
        self._last_frame_t = t
        thumb = _thumbnail(frame)
        if self._thumb is not None and float(np.abs(thumb - self._thumb).mean()) <= self.frozen_diff:
            if self._same_since is None:
                self._same_since = t
        else:
            self._same_since = None
        self._thumb = thumb
        if float(thumb.mean()) < self.dark_level:
            if self._dark_since is None:
                self._dark_since = t
        else:
            self._dark_since = None
        return self._set(self._steady_state(t), t)

    def _steady_state(self, t: float) -> str:
        if self._same_since is not None and t - self._same_since >= self.frozen_after_s:
            return FROZEN
        if self._dark_since is not None and t - self._dark_since >= self.dark_after_s:
            return DARK
        return OK

    def _set(self, state: str, t: float) -> str:
        if state != self.state:
            logger.info("camera health %s -> %s at t=%.1f", self.state, state, t)
            self.state = state
        return state


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """About 80x60 grey samples as float32: enough to tell frames apart, cheap to compare."""
    img = np.asarray(frame)
    step_y = max(1, img.shape[0] // 60)
    step_x = max(1, img.shape[1] // 80)
    small = img[::step_y, ::step_x].astype(np.float32)
    return small.mean(axis=2) if small.ndim == 3 else small
