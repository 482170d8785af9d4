"""Frame sources for the camera counter: the Pi camera, any cv2.VideoCapture source, IP camera streams, and
synthetic frames.

Every source is an iterable of :class:`Frame` and a context manager. Frames stay in memory; nothing here writes
to disk. ``open_source("picamera")`` uses picamera2 (imported only then), ``open_source("0")`` a USB camera,
``rtsp://``, ``http://`` and ``https://`` URLs an IP camera (:class:`StreamSource`, see stream.py), anything else a
video file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from footfall.errors import FootfallError

logger = logging.getLogger(__name__)

PICAMERA_NAMES = {"picamera", "picamera2", "picam", "pi"}


class SourceError(FootfallError):
    """A frame source cannot be opened or read."""


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based read order
    t: float  # seconds: media time for files, monotonic clock for live cameras
    image: np.ndarray  # BGR, uint8


class FrameSource:
    """Base: iterate frames, close when done."""

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoSource(FrameSource):
    """cv2.VideoCapture: a file, a camera index (int or digit string) or a stream URL."""

    def __init__(self, spec: str | int, must_exist: bool = False, max_frames: int | None = None):
        import cv2

        self.spec = spec
        self.max_frames = max_frames
        target: str | int = int(spec) if isinstance(spec, str) and spec.isdigit() else spec
        self.live = isinstance(target, int) or "://" in str(target)
        from footfall.counter.camera.stream import redact

        if must_exist and not self.live and not Path(str(target)).is_file():
            raise SourceError(f"cannot read video {redact(str(spec))}: no such file")
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            raise SourceError(f"cannot read video {redact(str(spec))}: OpenCV could not open it")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1.0 <= fps <= 240.0 else 15.0

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        start = time.monotonic()
        while self.max_frames is None or index < self.max_frames:
            ok, image = self._cap.read()
            if not ok or image is None:
                break
            t = time.monotonic() - start if self.live else index / self.fps
            yield Frame(index, t, image)
            index += 1

    def close(self) -> None:
        self._cap.release()


class PiCameraSource(FrameSource):
    """The Raspberry Pi camera through picamera2 (imported lazily; only present on a Pi)."""

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float = 15.0, max_frames: int | None = None):
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SourceError("the Pi camera needs picamera2 (apt install python3-picamera2)") from exc
        self.max_frames = max_frames
        self._cam = Picamera2()
        config = self._cam.create_video_configuration(
            main={"size": tuple(size), "format": "RGB888"},  # RGB888 is BGR byte order in numpy
            controls={"FrameRate": float(fps)},
        )
        self._cam.configure(config)
        self._cam.start()

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        start = time.monotonic()
        while self.max_frames is None or index < self.max_frames:
            image = self._cam.capture_array("main")
            yield Frame(index, time.monotonic() - start, image)
            index += 1

    def close(self) -> None:
        self._cam.stop()
        self._cam.close()


def open_source(spec: str, max_frames: int | None = None) -> FrameSource:
    """Open ``picamera`` (Pi camera), a camera index like ``0``, a video file or a stream URL."""
    if spec.strip().lower() in PICAMERA_NAMES:
        return PiCameraSource(max_frames=max_frames)
    from footfall.counter.camera.stream import StreamSource, is_stream_url

    if is_stream_url(spec):
        return StreamSource(spec, max_frames=max_frames)
    return VideoSource(spec, must_exist="://" not in spec and not spec.isdigit(), max_frames=max_frames)
