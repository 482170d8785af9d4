"""Hole 4 of #11: half-open connections cannot take the production web server (gevent, `footfall server --only
web`) down: header timeouts close them, the connection cap sheds them, and the unit's LimitNOFILE leaves room."""

from __future__ import annotations

import http.client
import json
import re
import resource
import socket
import subprocess
import sys
import threading
import time

import pytest

from footfall.demo.broker import free_port, wait_for_port
from footfall.server.store import SqliteStore
from footfall.server.web.auth import create_token
from footfall.site import load_site
from tests.conftest import ROOT, footfall_env, wait_until

pytestmark = pytest.mark.integration

UNIT = ROOT / "deploy" / "systemd" / "footfall-web.service"
HALF_OPEN = (
    b"GET /api/v1/rooms HTTP/1.1\r\nHost: footfall\r\n"  # the blank line that ends the headers never comes
)


def unit_nofile() -> int:
    match = re.search(r"^LimitNOFILE=(\d+)$", UNIT.read_text(), re.M)
    assert match, "footfall-web.service sets no LimitNOFILE"
    return int(match.group(1))


def raise_own_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def start_web(site_file, broker, log, **server_settings):
    """`footfall server --only web` with the unit's file limit (LimitNOFILE), on a free port."""
    port = free_port()
    extra = "".join(f"{key} = {value}\n" for key, value in server_settings.items())
    text = site_file.read_text().replace('listen = "127.0.0.1:8000"', f'listen = "127.0.0.1:{port}"\n{extra}')
    site_file.write_text(text)
    limit = unit_nofile()

    def as_the_unit_does() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))

    def part(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "footfall.cli", "server", "-c", str(site_file), "--only", name],
            env=footfall_env(broker),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=as_the_unit_does,
        )

    ingest = part("ingest")  # /healthz also reports ingest's heartbeat: run both, as the two units do
    web = part("web")
    assert wait_for_port(port, timeout=20), "the web server did not listen"
    return Both(web, ingest), port


class Both:
    def __init__(self, web: subprocess.Popen, ingest: subprocess.Popen):
        self.web, self.ingest = web, ingest

    def poll(self):
        return self.web.poll()

    def stop(self) -> None:
        for proc in (self.web, self.ingest):
            proc.terminate()
        for proc in (self.web, self.ingest):
            proc.wait(15)


def healthz(port: int, timeout: float = 1.0) -> int:
    """GET /healthz on a new connection; any failure to answer within `timeout` seconds raises."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def half_open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(HALF_OPEN)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0)
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


class Slowloris:
    """Holds `count` half-open connections, reopening each one the server closes, until stopped."""

    def __init__(self, port: int, count: int):
        self.port, self.count = port, count
        self.socks = [half_open(port) for _ in range(count)]
        self.reopened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            for n, sock in enumerate(self.socks):
                if closed_by_server(sock):
                    sock.close()
                    self.socks[n] = half_open(self.port)
                    self.reopened += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for sock in self.socks:
            sock.close()


def test_the_web_unit_raises_the_file_limit_above_the_connection_cap():
    from footfall.server.web.httpserver import MAX_CONNECTIONS

    assert unit_nofile() >= 2 * MAX_CONNECTIONS


def test_healthz_answers_within_a_second_while_1100_half_open_connections_are_held_for_30s(
    broker, site_file, tmp_path
):
    raise_own_file_limit(4096)
    with open(tmp_path / "web.log", "ab") as log:
        proc, port = start_web(site_file, broker, log)
        try:
            wait_until(lambda: healthz(port, timeout=5) == 200, 20, message="web healthy")
            attack = Slowloris(port, 1100)
            attack.thread.start()
            first = list(attack.socks[:50])
            answers = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                answers.append(healthz(port, timeout=1.0))  # raises if it takes longer than 1 s
                time.sleep(0.5)
            assert answers and set(answers) == {200}
            # Nothing closed them in 60 s before; now the header timeout (10 s) did, and the attacker had to
            # reopen them.
            assert attack.reopened >= 1100
            assert all(sock.fileno() == -1 for sock in first)
            assert proc.poll() is None
            attack.close()
        finally:
            proc.stop()
    assert "Traceback" not in (tmp_path / "web.log").read_text(errors="replace")


def test_at_the_connection_cap_half_open_connections_make_room_and_busy_ones_get_503(
    broker, site_file, tmp_path
):
    raise_own_file_limit(4096)
    site = load_site(site_file)
    store = SqliteStore(site.db_path)
    token = create_token(store, "viewer", "screen")
    store.close()
    with open(tmp_path / "web.log", "ab") as log:
        proc, port = start_web(site_file, broker, log, max_connections=20, header_timeout_s=120)
        streams, opened = [], []
        try:
            wait_until(lambda: healthz(port, timeout=5) == 200, 20, message="web healthy")
            idle = [half_open(port) for _ in range(40)]
            opened.extend(idle)  # twice the cap, and the header timeout is long
            assert healthz(port) == 200  # the oldest half-open connection made room
            wait_until(lambda: sum(closed_by_server(s) for s in idle) >= 20, 10, message="idle ones shed")
            for _ in range(20):  # twenty lobby screens: real requests, each holding its connection
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", f"/api/v1/stream?token={token}")
                assert conn.getresponse().status == 200
                streams.append(conn)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            busy = conn.getresponse()
            assert busy.status == 503
            assert json.loads(busy.read())["error"] == "busy"
            for stream in streams:
                stream.close()
            wait_until(
                lambda: healthz(port, timeout=5) == 200, 40, message="room again after the streams end"
            )
        finally:
            for sock in [*streams, *opened]:
                sock.close()
            proc.stop()
