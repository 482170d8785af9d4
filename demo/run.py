"""`footfall demo`: a whole center on one machine. A broker (Mosquitto if installed, else embedded amqtt), the
server (ingest + web) on an SQLite file, simulated door counters on gpiozero mock pins and a kiosk, in
accelerated time. Ctrl-C stops every process it started."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from footfall.demo.broker import LocalBroker, free_port, wait_for_port
from footfall.errors import FootfallError
from footfall.kiosk.pin import hash_pin, weak_reason
from footfall.signals import stop_children

logger = logging.getLogger(__name__)

EXAMPLE_SITE = Path(__file__).resolve().parent / "demo_site.toml"
DEMO_USERS = {"staff": "staff", "admin": "admin"}  # name: role
KIOSK_TOML = """[device]
id = "kiosk-hall"
site = "dongsi"
clock = "synced"

[mqtt]
host = "127.0.0.1"  # the demo's broker; its port comes from FOOTFALL_MQTT_PORT

[kiosk]
listen = "127.0.0.1:{port}"
data_dir = "{data_dir}"
staff_pin_hash = "{pin_hash}"
timezone = "Asia/Shanghai"
day_starts = "04:00"
center_name = "东四街道党群服务中心"
center_name_en = "Dongsi Community Service Center"
"""


def demo_pin() -> str:
    """A fresh staff PIN for the demo's kiosk (the example's 2468 is refused at start-up)."""
    while True:
        pin = f"{secrets.randbelow(10**6):06d}"
        if weak_reason(pin) is None:
            return pin


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_demo(data_dir: str | None, speed: float, port: int | None, seed: int, broker_kind: str | None) -> int:
    if port is not None and not port_is_free(port):
        raise FootfallError(
            f"port {port} is already in use on 127.0.0.1: give another --port, or none for a free one"
        )
    base = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="footfall-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    web_port = port or free_port()
    clean = False
    broker = LocalBroker(base / "broker", kind=broker_kind).start()
    site_path = base / "site.toml"
    site_path.write_text(
        EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{base / "server"}"')
    )
    env = {
        **os.environ,
        "FOOTFALL_MQTT_HOST": "127.0.0.1",
        "FOOTFALL_MQTT_PORT": str(broker.port),
        "FOOTFALL_SERVER_LISTEN": f"127.0.0.1:{web_port}",
    }
    footfall = [sys.executable, "-m", "footfall.cli"]
    # A staff account for the day's work and a separate admin (users, devices, corrections need staff or admin).
    passwords = {user: secrets.token_urlsafe(9) for user in DEMO_USERS}
    for user, role in DEMO_USERS.items():
        subprocess.run(
            [*footfall, "user", "add", "-c", str(site_path), user, "--role", role]
            + ["--password", passwords[user]],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    children: list[subprocess.Popen] = []
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        log = open(base / "server.log", "ab")  # noqa: SIM115 - closed at exit with the processes

        def spawn(*args: str) -> None:
            children.append(
                subprocess.Popen([*footfall, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
            )

        spawn("server", "-c", str(site_path), "--only", "ingest")
        spawn("server", "-c", str(site_path), "--only", "web")
        kiosk_port = free_port()
        kiosk_conf = base / "kiosk.toml"
        kiosk_pin = demo_pin()
        kiosk_conf.write_text(
            KIOSK_TOML.format(port=kiosk_port, data_dir=base / "kiosk", pin_hash=hash_pin(kiosk_pin))
        )
        spawn("kiosk", "-c", str(kiosk_conf))
        for what, where in (("web server", web_port), ("kiosk", kiosk_port)):
            if not wait_for_port(where, 30):
                raise FootfallError(f"the {what} did not start; see {base / 'server.log'}")
        spawn(
            "demo-center",
            "-c",
            str(site_path),
            "--speed",
            str(speed),
            "--seed",
            str(seed),
            "--data-dir",
            str(base / "devices"),
            "--kiosk-url",
            f"http://127.0.0.1:{kiosk_port}",
        )
        print(
            f"""
Footfall demo: {site_path}
  broker     {broker.kind} on 127.0.0.1:{broker.port}
  dashboard  http://127.0.0.1:{web_port}/   login: staff / {passwords["staff"]}   (admin: admin / {passwords["admin"]})
  big screen http://127.0.0.1:{web_port}/screen
  kiosk      http://127.0.0.1:{kiosk_port}/   (staff PIN {kiosk_pin})
  data       {base}   (logs in server.log and broker/{broker.kind}.log)
A day of visitors plays at {speed:g}x speed. Press Ctrl-C to stop.
""",
            flush=True,
        )
        while not stop.wait(1.0):
            if any(child.poll() is not None for child in children):
                logger.error("a demo process exited; stopping (see %s)", base / "server.log")
                return 1
        clean = True
        return 0
    finally:
        stop_children(children)
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if data_dir is None and clean:
            shutil.rmtree(base, ignore_errors=True)
        elif data_dir is None:
            logger.error("kept %s for its logs", base)  # the error above points into it
