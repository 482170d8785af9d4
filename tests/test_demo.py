"""`footfall demo`: a whole center on one machine, from one command; Ctrl-C stops everything it started."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request

import psutil
import pytest

from footfall.demo.broker import free_port
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def test_demo_runs_a_center_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    data = tmp_path / "demo"
    log = tmp_path / "demo.out"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "footfall.cli",
            "demo",
            "--speed",
            "600",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        text = wait_until(
            lambda: "Press Ctrl-C" in log.read_text() and log.read_text(), 60, message="demo banner"
        )
        assert f"http://127.0.0.1:{port}/" in text
        assert re.search(r"login: staff / \S+", text)
        token = subprocess.run(
            [
                sys.executable,
                "-m",
                "footfall.cli",
                "token",
                "create",
                "-c",
                str(data / "site.toml"),
                "--role",
                "viewer",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

        def entries() -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/rooms", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                return sum(room["entries_today"] for room in json.loads(response.read()))

        wait_until(lambda: entries() >= 20, 90, interval=0.5, message="simulated visitors counted")

        def checkins() -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/daily", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())["checkins"]["total"]

        wait_until(lambda: checkins() >= 1, 90, interval=0.5, message="check-ins through the kiosk app")
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 4  # broker, ingest, web, simulated devices
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(30)
    assert code == 0, log.read_text()[-3000:]
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
