"""A real RTSP server for the camera counter tests: GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0) serving
a folder of JPEG frames in a loop as RTP/JPEG at a steady frame rate, as an IP camera serves MJPEG over RTSP.

Run with the system Python, which has the GObject bindings (python3-gi):
    /usr/bin/python3 tests/camera_rtsp.py PORT FOLDER [FPS]
It serves rtsp://127.0.0.1:PORT/door and prints "ready" once listening. Killing it is the stream dying.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, folder = sys.argv[1], Path(sys.argv[2])
    fps = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    frames = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]
    if not frames:
        sys.exit(f"no .jpg frames in {folder}")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # A live source paced by the wall clock, like a camera: frames are pushed at fps, never faster.
    factory.set_launch(
        f'( appsrc name=src is-live=true format=time do-timestamp=true caps="image/jpeg,framerate={fps}/1" '
        "! jpegparse ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)
    state = {"next": 0, "src": None}

    def configure(_factory, media):
        state["src"] = media.get_element().get_by_name("src")

    def push():
        src = state["src"]
        if src is not None:
            data = frames[state["next"] % len(frames)]
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
