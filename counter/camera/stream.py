"""IP camera streams (RTSP, HTTP MJPEG) through OpenCV's FFmpeg backend, for a counter that must keep up.

A grabber thread owns the capture: it reads every frame the camera sends and keeps only the newest, so the
counter always works on the present and a slow moment never builds a backlog (frames it had no time for are
counted as dropped). When the stream stops (camera rebooted, network gone), reads time out, the capture is
released and reopened with exponential backoff. :meth:`StreamSource.status` reports the stream's health.
Passwords in URLs never reach a log line, an error message or the status: :func:`redact` hides them.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator

from footfall.counter.camera.sources import Frame, FrameSource, SourceError

logger = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
CONNECTING, CONNECTED, RECONNECTING, CLOSED = "connecting", "connected", "reconnecting", "closed"
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def is_stream_url(spec: str) -> bool:
    return str(spec).strip().lower().startswith(STREAM_SCHEMES)


def redact(text: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://***@host/x`` (also inside longer text)."""
    return _CREDENTIALS.sub("***@", str(text))


class StreamSource(FrameSource):
    """Newest-frame reader of an RTSP or HTTP (MJPEG) stream with reconnects.

    ``open_timeout_s`` / ``read_timeout_s`` bound how long FFmpeg may block; ``backoff_s`` is the first wait before
    reopening after a failure, doubled each failure up to ``max_backoff_s`` and reset by the next good frame.
    Iterating yields frames whose ``index`` counts every frame received (gaps are dropped frames) and whose ``t``
    is the monotonic time the frame arrived. Iteration ends only when the source is closed or ``max_frames``
    frames have been handed out.
    """

    def __init__(
        self,
        url: str,
        max_frames: int | None = None,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 3.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ):
        if not is_stream_url(url):
            raise SourceError(f"not a stream URL: {redact(url)}")
        self.url = url
        self.name = redact(url)
        self.max_frames = max_frames
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.fps = 15.0
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._latest: tuple[int, float, object] | None = None
        self._taken = -1
        self.state = CONNECTING
        self.received = 0
        self.delivered = 0
        self.reconnects = 0
        self.last_error = ""
        self._last_frame_at: float | None = None
        self._thread = threading.Thread(target=self._grab, name="camera-stream", daemon=True)
        self._thread.start()

    # -- the grabber thread --------------------------------------------------------------------------

    def _open(self):
        import cv2

        if self.url.lower().startswith("rtsp"):
            # Interleave RTP in the RTSP connection: no UDP ports to open, no packet loss on a busy Wi-Fi.
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        fps = cap.get(cv2.CAP_PROP_FPS)
        if fps and 1.0 <= fps <= 120.0:
            self.fps = fps
        return cap

    def _grab(self) -> None:
        delay = self.backoff_s
        while not self._closed.is_set():
            cap = self._open()
            if cap is None:
                self.last_error = "cannot open the stream"
            else:
                logger.info("camera stream %s connected", self.name)
                got_any = False
                while not self._closed.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        self.last_error = "the stream stopped sending frames"
                        break
                    got_any = True
                    self._set_state(CONNECTED)
                    now = time.monotonic()
                    with self._cond:
                        self._latest = (self.received, now, image)
                        self.received += 1
                        self._last_frame_at = now
                        self._cond.notify_all()
                cap.release()
                if got_any:
                    delay = self.backoff_s
            if self._closed.is_set():
                break
            self.reconnects += 1
            self._set_state(RECONNECTING)
            wait = delay * random.uniform(0.8, 1.2)  # jitter: many counters do not retry in lockstep
            logger.warning("camera stream %s: %s; reconnecting in %.1f s", self.name, self.last_error, wait)
            self._closed.wait(wait)
            delay = min(self.max_backoff_s, delay * 2)
        self._set_state(CLOSED)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            logger.info("camera stream %s: %s -> %s", self.name, self.state, state)
            self.state = state

    # -- the consumer --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        while not self._closed.is_set():
            if self.max_frames is not None and self.delivered >= self.max_frames:
                return
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closed.is_set() or (self._latest and self._latest[0] > self._taken), 0.5
                )
                latest = self._latest
                if self._closed.is_set() or latest is None or latest[0] <= self._taken:
                    continue
                self._taken = latest[0]
            self.delivered += 1
            yield Frame(latest[0], latest[1], latest[2])

    def status(self) -> dict:
        """Stream health: state, frames received / dropped (never processed because newer ones came), reconnects,
        seconds since the last frame, and the last error (no credentials)."""
        age = None if self._last_frame_at is None else round(time.monotonic() - self._last_frame_at, 1)
        return {
            "state": self.state,
            "url": self.name,
            "received": self.received,
            "dropped": max(
                0,
                self.received - self.delivered - (1 if self._latest and self._latest[0] > self._taken else 0),
            ),
            "reconnects": self.reconnects,
            "frame_age_s": age,
            "error": self.last_error if self.state != CONNECTED else "",
        }

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        # The grabber may sit in a read for up to the read timeout; it releases the capture itself.
        self._thread.join(self.open_timeout_s + self.read_timeout_s + 1.0)
