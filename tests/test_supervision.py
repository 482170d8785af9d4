"""Health that tells the truth and a supervisor that acts on it (#10 item 2), with real processes, a real Mosquitto and
real signals: ingest killed or frozen (SIGSTOP) -> /healthz 503 within 60 s, the `footfall server` supervisor
restarts it, counting resumes with nothing lost; the parent's death (SIGKILL) takes its children with it; a busy
port is one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from footfall.demo.broker import free_port
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_ingest_poison import publish_crossings

pytestmark = pytest.mark.integration


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def part_pid(parent: int, part: str) -> int | None:
    for pid in children_of(parent):
        try:
            args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if part.encode() in args:
            return pid
    return None


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from events").fetchone()[0]


@pytest.fixture
def server(broker, site_file, procs, tmp_path):
    port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{port}")
    parent = procs("server", "-c", str(site_file), env=env, name="server")
    wait_until(lambda: health(port)[0] == 200, 30, message="healthy")
    wait_server_online(broker)
    return parent, port, tmp_path / "data" / "footfall.db"


def test_killed_then_frozen_ingest_is_seen_and_restarted_and_nothing_is_lost(broker, server):
    parent, port, db = server
    publish_crossings(broker, 0, 10)
    wait_until(lambda: events(db) == 10, 15)

    # Killed: the supervisor restarts it; what was published meanwhile arrives.
    first = part_pid(parent.p.pid, "ingest")
    os.kill(first, signal.SIGKILL)
    publish_crossings(broker, 10, 10)
    wait_until(lambda: (part_pid(parent.p.pid, "ingest") or first) != first, 15, message="ingest restarted")
    wait_until(lambda: events(db) == 20, 30, message="events sent while ingest was dead")

    wait_until(lambda: health(port)[0] == 200, 20, message="healthy after the restart")
    # Frozen: /healthz says so within 60 s, the supervisor kills and restarts it, nothing is lost.
    frozen = part_pid(parent.p.pid, "ingest")
    os.kill(frozen, signal.SIGSTOP)
    stopped_at = time.monotonic()
    publish_crossings(broker, 20, 10)
    status, body = wait_until(lambda: (h := health(port))[0] == 503 and h, 60, interval=0.5, message="503")
    assert time.monotonic() - stopped_at < 60
    assert "ingest: stalled" in body["detail"], body
    wait_until(lambda: not alive(frozen), 40, interval=0.5, message="frozen ingest killed")
    wait_until(lambda: events(db) == 30, 40, message="events sent while ingest was frozen")
    wait_until(lambda: health(port)[0] == 200, 20, message="healthy again")
    assert parent.alive()
    assert "restarting it" in parent.output()


def test_sigkill_of_the_parent_takes_the_children_down(broker, server, site_file, procs):
    parent, port, _db = server
    kids = children_of(parent.p.pid)
    assert len(kids) == 2
    parent.p.send_signal(signal.SIGKILL)
    parent.p.wait()
    wait_until(lambda: not any(alive(k) for k in kids), 15, message="children gone with their parent")
    # The port and the broker client ids are free again: a new server starts cleanly.
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{port}")
    again = procs("server", "-c", str(site_file), env=env, name="again")
    wait_until(lambda: health(port)[0] == 200, 30, message="healthy after a restart")
    assert "Traceback" not in again.output()


@pytest.mark.parametrize("part", [[], ["--only", "web"]])
def test_busy_port_is_one_line(broker, site_file, part):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{port}")
        result = subprocess.run(
            [sys.executable, "-m", "footfall.cli", "server", "-c", str(site_file), *part],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use (is another footfall server running?)"
    ]
