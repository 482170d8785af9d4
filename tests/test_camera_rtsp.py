"""The camera counter on a real RTSP stream: GStreamer's RTSP server (tests/camera_rtsp.py, run by the system
Python) serves the start of the real bus.avi footage as RTP/JPEG, as an IP camera does. The counter reads it through
OpenCV's FFmpeg backend, counts, survives the stream being killed and brought back, and always works on the newest
frame. The URL carries a password that must never reach a log line or the device health.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path

import cv2
import pytest

from footfall.counter.camera.evaluate import read_crossings
from footfall.counter.camera.stream import StreamSource
from footfall.counter.camera_app import CameraCounterApp
from footfall.counter.config import load_counter_config
from tests.camera_footage import require_bus
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

SERVER = Path(__file__).with_name("camera_rtsp.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # has the GObject bindings (python3-gi); the venv does not
CLIP_FRAMES = 440  # bus.avi's first 440 frames hold six whole crossings, the last one by frame 397
SETTLE_FRAMES = 90  # held frames after the clip: more than the tracker's learning delay (4 s at 15 fps)
PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    bus = require_bus()
    folder = tmp_path_factory.mktemp("rtsp-frames")
    cap = cv2.VideoCapture(str(bus / "bus.avi"))
    for i in range(CLIP_FRAMES):
        ok, frame = cap.read()
        assert ok, f"bus.avi ended at frame {i}"
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cap.release()
    return folder


@pytest.fixture(scope="module")
def expected() -> dict[str, int]:
    """The reference crossings in the served frames, as in/out with in = down."""
    rows = [c for c in read_crossings(require_bus() / "bus_crossings.csv") if c.frame < CLIP_FRAMES]
    return {"in": sum(c.direction == "down" for c in rows), "out": sum(c.direction == "up" for c in rows)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """tests/camera_rtsp.py in its own process, playing the frames once and then holding the last one."""

    def __init__(self, port: int, folder: Path):
        if not Path(SYSTEM_PYTHON).is_file():
            pytest.fail(
                f"the RTSP test runs GStreamer's RTSP server with {SYSTEM_PYTHON}: make system installs it"
            )
        self.port, self.folder = port, folder
        self.proc: subprocess.Popen | None = None

    def start(self) -> RtspServer:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port), str(self.folder), "--once"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()  # "ready", or end of file if it died
        if line.strip() != "ready":
            self.proc.wait(10)
            pytest.fail(
                f"RTSP server did not start (make system installs GStreamer's RTSP server): "
                f"{self.proc.stderr.read()[-2000:]}"
            )
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def rtsp(frames_dir):
    servers: list[RtspServer] = []

    def serve(port: int) -> RtspServer:
        servers.append(RtspServer(port, frames_dir).start())
        return servers[-1]

    yield serve
    for s in servers:
        s.kill()


def assert_counts(counts: dict[str, int], expected: dict[str, int], source) -> None:
    """The crossings of one play of the clip. A live stream on a shared machine may lose a few frames when the
    counter is starved of CPU (it skips to the newest frame), which can cost one crossing: at most one per
    direction may be missing, none may be extra."""
    for direction, n in expected.items():
        assert n - 1 <= counts[direction] <= n, f"{counts} for {expected}; stream {source.status()}"


def url(port: int) -> str:
    return f"rtsp://installer:{PASSWORD}@127.0.0.1:{port}/door"


def test_rtsp_stream_is_counted_and_counting_resumes_after_the_stream_dies(
    broker, rtsp, expected, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    port = free_port()
    server = rtsp(port)
    config = tmp_path / "counter.toml"
    config.write_text(
        f'[device]\nid = "door-ipcam"\nsite = "dongsi"\nsensor = "camera"\nclock = "synced"\n'
        f'data_dir = "{tmp_path / "pi"}"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'[camera]\nsource = "{url(port)}"\nline = [0, 120, 319, 120]\nin_direction = "down"\n'
        "person_size = 85.0\n"  # as calibrated: this test is about the stream (learning: test_camera_oblique)
    )
    app = CameraCounterApp(load_counter_config(config)).start()
    source = app.source
    try:
        # Counts arrive from the served clip.
        wait_until(
            lambda: source.delivered >= CLIP_FRAMES + SETTLE_FRAMES, 120, message="the clip played through"
        )
        first = dict(app.counter.counts)
        assert_counts(first, expected, source)
        health = app.runtime.health()
        assert health["stream"] == "connected" and health["stream_reconnects"] == 0
        assert health["person_size"] == "fixed" and health["person_size_px"] == 85.0

        # The stream dies: the device says so in its health.
        server.kill()
        wait_until(
            lambda: app.runtime.health()["stream"] == "reconnecting", 30, message="stream reconnecting"
        )
        assert app.runtime.health()["sensor"] == "fault"
        received = source.received

        # It comes back (the camera rebooted: its clip plays from the start): counting resumes on the new frames.
        rtsp(port)
        wait_until(lambda: source.status()["state"] == "connected", 60, message="stream connected again")
        wait_until(
            lambda: source.delivered >= CLIP_FRAMES + SETTLE_FRAMES + received,
            120,
            message="the clip played through again",
        )
        assert_counts({k: v - first[k] for k, v in app.counter.counts.items()}, expected, source)
        health = app.runtime.health()
        assert health["stream"] == "connected" and health["stream_reconnects"] >= 1
        assert PASSWORD not in repr(health) and PASSWORD not in repr(source.status())
    finally:
        app.stop()
    assert source.status()["state"] == "closed"
    assert PASSWORD not in caplog.text and "installer:" not in caplog.text
    assert "camera stream rtsp://***@127.0.0.1" in caplog.text


def test_stream_hands_out_the_newest_frame_after_a_stall(rtsp):
    # A counter that falls behind (a slow moment, a busy CPU) skips to the present: no growing backlog.
    port = free_port()
    rtsp(port)
    with StreamSource(url(port)) as src:
        frames = iter(src)
        first = next(frames)
        wait_until(lambda: src.received >= first.index + 30, 30, message="30 more frames sent")
        newest = src.received - 1
        frame = next(frames)
        assert frame.index >= newest  # the newest frame, not the one after the last taken
        assert src.status()["dropped"] >= frame.index - first.index - 1
        assert src.delivered == 2
