"""Member QR codes from the Pi camera: one frame at a time, decoded in memory, never stored or sent.

A frame source is any callable returning a BGR image (numpy array) or None; tests pass their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

FrameSource = Callable[[], Any]


def opencv_frame_source(device: int = 0) -> FrameSource:
    """Frames from a V4L2 camera (USB, or the Pi camera through libcamera's V4L2 compatibility), opened lazily
    and kept open; the frame is returned to the caller and dropped, never written anywhere."""
    import cv2

    lock = threading.Lock()
    state: dict[str, Any] = {"cap": None}

    def read():
        with lock:
            if state["cap"] is None or not state["cap"].isOpened():
                state["cap"] = cv2.VideoCapture(device)
            ok, frame = state["cap"].read()
            return frame if ok else None

    return read


def decode_qr(frame: Any) -> str | None:
    """The text of a QR code in `frame`, or None. The frame is not kept."""
    if frame is None:
        return None
    import cv2

    try:
        text, points, _ = cv2.QRCodeDetector().detectAndDecode(frame)
    except cv2.error as exc:
        logger.debug("QR decode failed: %s", exc)
        return None
    return text or None
