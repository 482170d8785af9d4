"""Process helpers shared by every Footfall process."""

from __future__ import annotations

import signal
import subprocess
import threading


def wait_for_signal(stop: threading.Event | None = None) -> None:
    """Block until SIGTERM or SIGINT (or until `stop` is set by someone else)."""
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(1.0)


def stop_children(children: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM every child still running, then wait; kill what has not stopped after `timeout` seconds."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
