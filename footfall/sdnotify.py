"""systemd's notify protocol without a dependency: datagrams to $NOTIFY_SOCKET (sd_notify(3)).

Outside systemd (no $NOTIFY_SOCKET) every call does nothing, so the apps call these unconditionally:
- `ready()` once the process serves (Type=notify units wait for it);
- `watchdog()` from the loop that proves the process works, at least every `watchdog_interval() / 2` seconds
  (units with WatchdogSec= restart a process that stops calling it), or `Watchdog(...).start()` for a thread
  that pings while a health check passes;
- `status("...")` for `systemctl status`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when not run by systemd or the send failed."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        return True
    except OSError as exc:
        logger.warning("could not notify systemd (%s): %s", state, exc)
        return False


def ready(status_text: str | None = None) -> bool:
    return notify("READY=1" + (f"\nSTATUS={status_text}" if status_text else ""))


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """The unit's WatchdogSec in seconds when the watchdog is on for this process, else None."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000


class Watchdog:
    """A daemon thread that sends WATCHDOG=1 every interval/2 seconds while `healthy()` is true.

    When `healthy()` turns false the pings stop and systemd restarts the unit after WatchdogSec.
    Does nothing when the unit has no watchdog.
    """

    def __init__(self, healthy: Callable[[], bool] = lambda: True, env: Mapping[str, str] | None = None):
        self.healthy = healthy
        self.interval = watchdog_interval(env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Watchdog:
        if self.interval is not None:
            self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval / 2):
            try:
                ok = self.healthy()
            except Exception:
                logger.exception("health check failed")
                ok = False
            if ok:
                watchdog()
            else:
                logger.warning("unhealthy: not pinging the systemd watchdog")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
