"""A real RTSP server for the camera counter tests: GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0) serving
a folder of JPEG frames in a loop as RTP/JPEG at a steady frame rate, as an IP camera serves MJPEG over RTSP.

Run with the system Python, which has the GObject bindings (python3-gi):
    /usr/bin/python3 tests/camera_rtsp.py PORT FOLDER [--fps 15] [--once]
It serves rtsp://127.0.0.1:PORT/door and prints "ready" once listening. Killing it is the stream dying. With
--once the frames play once, then the last one is sent again and again (a camera watching an empty doorway), so a
test knows exactly which crossings the stream holds. Frames play from the first one when the first client comes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            break
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + length
    sys.exit("not a baseline or progressive JPEG")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    port, folder, fps = args.port, args.folder, args.fps
    frames = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]
    if not frames:
        sys.exit(f"no .jpg frames in {folder}")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # A live source paced by the wall clock, like a camera: frames are pushed at fps, never faster. The caps name
    # the frame size, read from the first JPEG, so that no parser element (gst-plugins-bad) is needed.
    width, height = jpeg_size(frames[0])
    caps = f"image/jpeg,width={width},height={height},framerate={fps}/1"
    factory.set_launch(
        f'( appsrc name=src is-live=true format=time do-timestamp=true caps="{caps}" ! rtpjpegpay name=pay0 pt=26 )'
    )
    factory.set_shared(True)
    state = {"next": 0, "src": None}

    def configure(_factory, media):
        state["src"] = media.get_element().get_by_name("src")

    def push():
        src = state["src"]
        if src is not None:
            k = state["next"]
            data = frames[min(k, len(frames) - 1) if args.once else k % len(frames)]
            state["next"] += 1
            buf = Gst.Buffer.new_wrapped(data)
            buf.duration = Gst.SECOND // fps
            if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                state["src"] = None  # the client left: the media is torn down, wait for the next one
        return True

    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory("/door", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {port}")
    GLib.timeout_add(max(1, round(1000 / fps)), push)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
