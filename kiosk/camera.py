"""Member QR codes from the kiosk's camera: one frame at a time, decoded in memory, never stored or sent.

The kiosk box has no OpenCV (it would triple the install): a frame is one grey picture read by Debian's `ffmpeg`
from the V4L2 device (USB, or the Pi camera through libcamera's V4L2 compatibility), and zxing-cpp decodes it. A
frame source is any callable returning an image (a 2-D buffer or array, as zxing-cpp reads) or None; tests pass
their own.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

FrameSource = Callable[[], Any]
FRAME_TIMEOUT_S = 5.0


def ffmpeg_frame_source(
    device: int | str = 0, size: tuple[int, int] = (640, 480), input_args: Sequence[str] | None = None
) -> FrameSource:
    """One grey `size` frame per call from `ffmpeg`, reading /dev/video<device> (or `input_args`, e.g. a file in
    tests). The camera is opened only for that frame, so it is read only while the scan screen asks."""
    width, height = size
    path = device if isinstance(device, str) else f"/dev/video{device}"
    source = (
        list(input_args) if input_args else ["-f", "v4l2", "-video_size", f"{width}x{height}", "-i", path]
    )
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", *source, "-frames:v", "1"]
    command += ["-vf", f"scale={width}:{height}", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"]

    def read() -> memoryview | None:
        try:
            done = subprocess.run(command, capture_output=True, timeout=FRAME_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("camera frame failed: %s", exc)
            return None
        if done.returncode != 0 or len(done.stdout) != width * height:
            logger.warning("camera frame failed: %s", done.stderr.decode(errors="replace").strip()[-200:])
            return None
        return memoryview(done.stdout).cast("B", (height, width))

    return read


def decode_qr(frame: Any) -> str | None:
    """The text of a QR code in `frame`, or None. The frame is not kept."""
    if frame is None:
        return None
    import zxingcpp

    try:
        found = zxingcpp.read_barcode(frame, formats=zxingcpp.BarcodeFormat.QRCode)
    except (TypeError, ValueError, RuntimeError) as exc:  # a frame zxing-cpp cannot read
        logger.debug("QR decode failed: %s", exc)
        return None
    return (found.text or None) if found and found.valid else None
