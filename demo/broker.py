"""A local MQTT broker for `footfall demo` and the tests: Mosquitto with Footfall's shipped settings when it is
installed, otherwise the embedded amqtt broker (MQTT 3.1.1 only, ~6,700 msg/s: a demo, not production).
"""

from __future__ import annotations

import getpass
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

SETTINGS_FILE = Path(__file__).with_name("mosquitto.conf")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class LocalBroker:
    """One broker process on 127.0.0.1:`port`, with its persistence under `data_dir`."""

    def __init__(
        self,
        data_dir: str | Path,
        port: int | None = None,
        kind: str | None = None,
        extra_conf: str = "",
        anonymous: bool = True,
        listener: bool = True,
    ):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.kind = kind or ("mosquitto" if shutil.which("mosquitto") else "amqtt")
        self.extra_conf = extra_conf
        self.anonymous = anonymous  # False: only accounts of the password file in extra_conf may connect
        self.listener = listener  # False: extra_conf brings every listener, `port` among them
        self.proc: subprocess.Popen | None = None

    def config_text(self) -> str:
        # Run as the current user: Mosquitto started as root would switch to `mosquitto` and then fail to write
        # its persistence file in our data directory (losing queued messages over a restart).
        listener = f"listener {self.port} 127.0.0.1\n" if self.listener else ""
        return (
            SETTINGS_FILE.read_text()
            + f"\n{listener}allow_anonymous {str(self.anonymous).lower()}\n"
            + f"user {getpass.getuser()}\n"
            + f"persistence_location {self.data_dir.resolve()}/\n{self.extra_conf}\n"
        )

    def start(self, timeout: float = 10.0) -> LocalBroker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / f"{self.kind}.log", "ab")  # noqa: SIM115 - lives as long as the process
        if self.kind == "mosquitto":
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(self.config_text())
            cmd = [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]
        else:
            cmd = [sys.executable, "-m", "footfall.demo.embedded_broker", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_for_port(self.port, timeout):
            self.stop()
            raise RuntimeError(f"{self.kind} did not start on port {self.port}; see {log.name}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop: Mosquitto saves its persistence file on SIGTERM."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> LocalBroker:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
