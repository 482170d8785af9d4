"""The systemd watchdog, spoken for real (#10 item 2): ingest and the kiosk, run as `footfall` processes under a
notify socket the test binds (as systemd would), say READY=1 and keep sending WATCHDOG=1; a frozen process (SIGSTOP)
stops sending, which is what makes systemd's WatchdogSec= restart it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

import pytest

from footfall.demo.broker import free_port
from footfall.kiosk.pin import hash_pin
from tests.conftest import footfall_env

pytestmark = pytest.mark.integration

PIN = "246810"


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    yield path, sock
    sock.close()


def received(sock, seconds: float) -> list[bytes]:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            out.append(sock.recv(4096))
    return out


def check_watchdog(proc, sock) -> None:
    first = received(sock, 8)
    assert any(m.startswith(b"READY=1") for m in first), first
    assert first.count(b"WATCHDOG=1") >= 3, first
    os.kill(proc.p.pid, signal.SIGSTOP)
    try:
        received(sock, 0.6)  # what was already on its way
        assert b"WATCHDOG=1" not in received(sock, 3)
    finally:
        os.kill(proc.p.pid, signal.SIGCONT)
    assert b"WATCHDOG=1" in received(sock, 3)


def test_ingest_feeds_the_watchdog_until_frozen(broker, site_file, procs, notify_socket):
    path, sock = notify_socket
    env = footfall_env(broker, NOTIFY_SOCKET=path)
    ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    check_watchdog(ingest, sock)


def test_kiosk_feeds_the_watchdog_until_frozen(broker, tmp_path, procs, notify_socket):
    path, sock = notify_socket
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[device]\nid = "kiosk-hall"\nsite = "dongsi"\nclock = "synced"\n\n[mqtt]\nhost = "127.0.0.1"\n'
        f'port = {broker.port}\n\n[kiosk]\ndata_dir = "{tmp_path / "kiosk"}"\nstaff_pin_hash = "{hash_pin(PIN)}"\n'
        f'listen = "127.0.0.1:{free_port()}"\n'
    )
    kiosk = procs("kiosk", "-c", str(config), env=footfall_env(broker, NOTIFY_SOCKET=path), name="kiosk")
    check_watchdog(kiosk, sock)
