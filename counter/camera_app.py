"""The camera door counter process: frames from the Pi camera (or any OpenCV source) -> CameraCounter ->
`crossing` events through the shared edge runtime. Frames stay in memory: none is stored or sent."""

from __future__ import annotations

import logging
import threading
import time
from functools import partial

from footfall import sdnotify
from footfall.counter.config import CounterConfig, edge_settings
from footfall.edge import EdgeRuntime
from footfall.messages import Crossing
from footfall.signals import wait_for_signal

logger = logging.getLogger(__name__)


class CameraCounterApp:
    def __init__(self, config: CounterConfig, source=None):
        from footfall.counter.camera.health import CameraHealth
        from footfall.counter.camera.pipeline import CameraCounter
        from footfall.counter.camera.size_model import SizeModel
        from footfall.counter.camera.sources import open_source

        self.config = config
        cam = config.camera
        self.source = source or open_source(cam.source)
        model = cam.size_model
        self.counter = CameraCounter(
            tuple(float(v) for v in cam.line),
            in_side=cam.in_direction,
            person_size=cam.person_size,
            size_model=SizeModel.from_config(model) if model else None,
            process_width=cam.process_width,
        )
        self.health = CameraHealth()
        self._health_lock = threading.Lock()
        self.runtime = EdgeRuntime(
            edge_settings(config),
            sensor_health=self._sensor_health,
            extra_health=self._extra_health,
        )
        self.crossings = 0
        self._stop = threading.Event()

    def _stream_status(self) -> dict | None:
        status = getattr(self.source, "status", None)
        return status() if callable(status) else None

    def _sensor_health(self) -> str:
        stream = self._stream_status()
        if stream is not None and stream["state"] != "connected":
            return "fault"
        return "ok" if self.health.state == "ok" else "fault"

    def _extra_health(self) -> dict:
        """Flat fields for the device status: camera picture health, the IP stream's health (state, reconnects,
        frames dropped to stay on the newest) and how sure the counter is of the person size."""
        size = self.counter.size_status()
        extra = {
            "camera": self.health.state,
            "person_size": size["state"],
            "person_size_confidence": size["confidence"],
        }
        if "size_at_line" in size:
            extra["person_size_px"] = size["size_at_line"]
        stream = self._stream_status()
        if stream is not None:
            extra["stream"] = stream["state"]
            extra["stream_reconnects"] = stream["reconnects"]
            extra["stream_dropped"] = stream["dropped"]
        return extra

    def _feed_health(self, image, t: float) -> None:
        with self._health_lock:
            self.health.feed(image, t)

    def run_frames(self) -> None:
        for frame in self.source:
            if self._stop.is_set():
                break
            now = time.monotonic()
            self._feed_health(frame.image, now)
            self._emit(self.counter.process(frame.image, frame.index, frame.t))
        self._emit(self.counter.finish())  # a recorded clip ended: count what the tracker had not reached

    def _emit(self, crossings) -> None:
        for crossing in crossings:
            self.runtime.emit(partial(Crossing, direction=crossing.direction, count=crossing.count))
            self.crossings += 1

    def _watch_health(self) -> None:
        # A camera that stops delivering blocks the reader: feed "no frame" from here so health notices.
        while not self._stop.wait(1.0):
            self._feed_health(None, time.monotonic())

    def start(self) -> CameraCounterApp:
        self.runtime.start()
        self._reader = threading.Thread(target=self.run_frames, name="camera", daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch_health, name="camera-health", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # Let the reader leave its read() first: releasing an OpenCV capture while another thread reads from it
        # can block both for good. A live camera that hangs in read() gets a few seconds, then is released anyway.
        self._reader.join(5)
        self.source.close()
        self.runtime.stop()


def run_camera_counter(config: CounterConfig) -> int:
    app = CameraCounterApp(config).start()
    sdnotify.ready()
    try:
        wait_for_signal()
    finally:
        app.stop()
    return 0
