"""Shared fixtures: a real Mosquitto on a free port with the shipped settings, site files in tmp dirs,
and helpers that wait on conditions instead of sleeping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from footfall.demo.broker import LocalBroker

# The web tests' fixtures (site, store, hub, app, client, tokens), shared by test_web_api and test_web_pages.
pytest_plugins = ["tests.webkit"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SITE = ROOT / "deploy" / "examples" / "site.toml"
ARTIFACTS = ROOT / "tests" / "artifacts"


def wait_until(
    condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, message: str = ""
):
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto, started by the test with Footfall's deploy/mosquitto settings."""
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: .ci/run installs it (apt-get install mosquitto)")
    b = LocalBroker(tmp_path / "broker", kind="mosquitto").start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster (tests/pg.py) for one test module; each test makes its own database."""
    from tests.pg import PgCluster

    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def site_file(tmp_path) -> Path:
    """The reference center's site file, with its data under tmp_path."""
    text = EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"')
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def wait_server_online(broker: LocalBroker, site: str = "dongsi", timeout: float = 20.0) -> None:
    """Wait for ingest's retained `online` status: it is published after ingest has subscribed, so events sent from
    now on reach its persistent session even while it is down."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    seen: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_message = lambda c, u, m: seen.append(m.payload)
    client.connect("127.0.0.1", broker.port)
    client.subscribe(f"footfall/{site}/server/status", 1)
    client.loop_start()
    try:
        wait_until(lambda: b"online" in seen, timeout, message="ingest online")
    finally:
        client.loop_stop()
        client.disconnect()


def footfall_env(broker: LocalBroker, **extra: str) -> dict[str, str]:
    env = {**os.environ, "FOOTFALL_MQTT_HOST": "127.0.0.1", "FOOTFALL_MQTT_PORT": str(broker.port)}
    env.update(extra)
    return env


class Proc:
    """A `footfall ...` subprocess whose output goes to a log file (shown when a test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.args, self.env, self.log = args, env, log
        self.p: subprocess.Popen | None = None

    def start(self) -> Proc:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.p = subprocess.Popen(
            [sys.executable, "-m", "footfall.cli", *self.args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def stop(self, timeout: float = 10) -> None:
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def procs(tmp_path):
    """Start `footfall` subprocesses; all are stopped at the end and their logs printed on failure."""
    started: list[Proc] = []

    def start(*args: str, env: dict[str, str], name: str = "proc") -> Proc:
        proc = Proc(list(args), env, tmp_path / f"{name}-{len(started)}.log").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
        sys.stderr.write(f"--- {proc.args} ---\n{proc.output()[-4000:]}\n")


def door_runtime(outbox, port: int, device: str = "door-main", site: str = "dongsi"):
    """A counter's edge runtime (not started) with its outbox at `outbox`, on the broker at 127.0.0.1:`port`."""
    from footfall.edge import EdgeRuntime, EdgeSettings
    from footfall.link import LinkSettings

    link = LinkSettings(host="127.0.0.1", port=port)
    settings = EdgeSettings(
        site=site, device=device, kind="counter", outbox_path=str(outbox), link=link, clock="synced"
    )
    return EdgeRuntime(settings)


def example_site(data_dir, **server):
    """The reference center's site, loaded from its file, with its data (and any other [server] keys) replaced."""
    import dataclasses

    from footfall.config import load_toml
    from footfall.site import site_from_dict

    loaded = site_from_dict(load_toml(EXAMPLE_SITE), str(EXAMPLE_SITE))
    return dataclasses.replace(
        loaded, server=dataclasses.replace(loaded.server, data_dir=str(data_dir), **server)
    )
