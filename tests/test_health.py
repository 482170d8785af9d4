"""/healthz tells the truth about ingest (#10 item 2): its heartbeat file (missing, stale, store problem, broker link)
and the web's own broker link; a dead or stalled worker is a reason to exit for a restart. Real Mosquitto, real
SQLite; the process-level checks (SIGKILL, SIGSTOP) are in test_supervision."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading

import pytest

from footfall.clock import format_ts, utcnow
from footfall.server.health import SIZE, IngestHealth, health_path, ingest_problems
from footfall.server.ingest_service import IngestService
from footfall.server.process import watch
from footfall.server.web import create_app
from footfall.server.web.live import LiveHub
from tests.conftest import wait_until


@pytest.fixture
def live_site(site, broker):
    return dataclasses.replace(site, mqtt=dataclasses.replace(site.mqtt, host="127.0.0.1", port=broker.port))


@pytest.fixture
def web(live_site, store):
    hub = LiveHub(live_site).start()
    assert hub.link.wait_connected(10)
    client = create_app(live_site, store, hub, {"TESTING": True, "CSRF_ENABLED": False}).test_client()
    yield client, hub
    hub.stop()


def detail(client) -> tuple[int, str]:
    r = client.get("/healthz")
    return r.status_code, r.get_json().get("detail", "")


def test_healthz_follows_the_ingest_heartbeat(web, live_site):
    client, _hub = web
    status, why = detail(client)
    assert status == 503 and "ingest: no heartbeat" in why

    beat = IngestHealth(live_site.data_dir)
    beat.set_mqtt(True)
    beat.beat(force=True)
    assert client.get("/healthz").status_code == 200
    assert health_path(live_site.data_dir).stat().st_size == SIZE  # fixed size: rewritable on a full disk

    beat.set_store_problem("cannot write (database or disk is full)")
    status, why = detail(client)
    assert status == 503 and why == "store: cannot write (database or disk is full)"
    beat.set_store_problem(None)
    assert client.get("/healthz").status_code == 200

    beat.set_mqtt(False)
    status, why = detail(client)
    assert status == 503 and why == "ingest: not connected to the broker"
    beat.close()


def test_a_stale_heartbeat_is_a_stalled_ingest(live_site):
    beat = IngestHealth(live_site.data_dir)
    beat.set_mqtt(True)
    assert ingest_problems(live_site.data_dir) == []
    later = utcnow() + dt.timedelta(seconds=31)
    [problem] = ingest_problems(live_site.data_dir, later)
    assert problem.startswith("ingest: stalled or stopped (no heartbeat for 31 s)")
    health_path(live_site.data_dir).write_text("garbage")
    assert "no heartbeat" in ingest_problems(live_site.data_dir)[0]
    beat.close()


def test_web_link_down_is_503(web, live_site, broker):
    client, hub = web
    IngestHealth(live_site.data_dir).set_mqtt(True)
    assert client.get("/healthz").status_code == 200
    broker.stop()
    wait_until(lambda: not hub.connected, 15)
    status, why = detail(client)
    assert status == 503 and "mqtt: not connected to the broker" in why


def test_a_dead_worker_is_a_reason_to_restart(live_site, store, monkeypatch):
    service = IngestService(live_site, store, client_id="test-dead-worker")

    def die():
        raise SystemExit("a bug that escapes every guard")

    monkeypatch.setattr(service, "_loop", die)
    service.start()
    try:
        problem = watch(service, threading.Event(), every=0.1)
        assert problem == "the ingest worker thread died"
    finally:
        service.stop()


def test_a_stalled_worker_is_a_reason_to_restart(live_site, store, monkeypatch):
    service = IngestService(live_site, store, client_id="test-stalled-worker")
    release = threading.Event()
    monkeypatch.setattr(service, "_loop", release.wait)  # alive but never beats
    monkeypatch.setattr("footfall.server.ingest_service.EXIT_AFTER_S", 0.5)
    service.start()
    try:
        problem = watch(service, threading.Event(), every=0.1)
        assert problem and problem.startswith("the ingest worker stalled")
    finally:
        release.set()
        service.stop()


def test_a_working_service_is_watched_until_stop(live_site, store):
    service = IngestService(live_site, store, client_id="test-working").start()
    try:
        stop = threading.Event()
        threading.Timer(2.5, stop.set).start()
        assert watch(service, stop, every=0.2) is None
        beat = json.loads(health_path(live_site.data_dir).read_text())
        assert beat["problems"] == [] and beat["beat"] <= format_ts(utcnow())
    finally:
        service.stop()


DYING_INGEST = """
import sys
from footfall.server.ingest_service import IngestService
from footfall.server.process import run_ingest
from footfall.site import load_site

def die(self):
    raise RuntimeError("injected: the worker dies")

IngestService._loop = die
sys.exit(run_ingest(load_site(sys.argv[1])))
"""


def test_the_ingest_process_exits_for_a_restart_when_its_worker_dies(site_file, broker, tmp_path):
    """Fault injection in a real ingest process: the exit code tells systemd and the supervisor to restart it."""
    import subprocess
    import sys

    from footfall.server.process import EXIT_RESTART
    from tests.conftest import footfall_env

    result = subprocess.run(
        [sys.executable, "-c", DYING_INGEST, str(site_file)],
        env=footfall_env(broker), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == EXIT_RESTART, result.stderr
    assert "the ingest worker thread died: exiting so that it is restarted" in result.stderr


def test_ingest_workers_problems_show_in_healthz_and_metrics(web, live_site, store):
    """Worker 1 lists the other ingest workers' problems in its heartbeat (server.ingest_workers): /healthz and
    the `footfall_ingest_problems` gauge tell them like ingest's own."""
    from footfall.server.metrics import StoreCollector

    client, _hub = web
    beat = IngestHealth(live_site.data_dir)
    beat.set_mqtt(True)
    beat.beat(force=True)
    assert client.get("/healthz").status_code == 200

    def gauge() -> float:
        family = next(
            f
            for f in StoreCollector(live_site, store, None).collect()
            if f.name == "footfall_ingest_problems"
        )
        return family.samples[0].value

    assert gauge() == 0
    beat.workers_problems = ["ingest worker 2: restarted 1 time(s) in the last minute"]
    beat.beat(force=True)
    status, why = detail(client)
    assert status == 503 and why == "ingest worker 2: restarted 1 time(s) in the last minute"
    assert gauge() == 1
    beat.close()
