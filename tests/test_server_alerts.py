"""The server's own alerts (#10 item 5), in real processes over a real Mosquitto: `ingest_stalled` opens on the web's
watch when no ingest counts and clears when one does; `disk_low` opens when the store's disk has less free space than
`disk_free_min_mb`. Hysteresis of `disk_low` is checked on the monitor itself with a fake disk."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections import namedtuple

import pytest

from footfall.demo.broker import free_port
from footfall.server.alerting import alerts_payload
from footfall.server.monitor import MB, Monitor
from footfall.server.store import SqliteStore
from footfall.site import load_site
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_dashboard_browser import cli

NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)


def with_alerts(site_file, **settings) -> None:
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    site_file.write_text(site_file.read_text() + f"\n[alerts]\n{lines}")


def open_alerts(port: int, token: str) -> list[dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read())["alerts"]
    except OSError:
        return []


def kinds(port: int, token: str) -> set[str]:
    return {a["kind"] for a in open_alerts(port, token)}


@pytest.mark.integration
def test_ingest_stalled_opens_without_ingest_and_clears_when_it_counts(broker, site_file, procs):
    with_alerts(site_file, ingest_stall_s=2, check_every_s=1)
    port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{port}")
    procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    db = site_file.parent / "data" / "footfall.db"
    wait_until(lambda: db.exists() and db.stat().st_size > 0, 20, message="store made")
    token = cli("token", "create", "-c", str(site_file), "--role", "viewer", "--label", "t", env=env)
    wait_until(lambda: "ingest_stalled" in kinds(port, token), 30, message="ingest_stalled alert")
    [alert] = [a for a in open_alerts(port, token) if a["kind"] == "ingest_stalled"]
    assert alert["device"] == ""  # about the server itself

    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    wait_server_online(broker)
    wait_until(lambda: "ingest_stalled" not in kinds(port, token), 30, message="ingest_stalled cleared")


@pytest.mark.integration
def test_disk_low_opens_when_free_space_is_under_the_limit(broker, site_file, procs):
    with_alerts(site_file, disk_free_min_mb=10**9, check_every_s=1)  # a petabyte: no disk here has that free
    port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{port}")
    procs("server", "-c", str(site_file), env=env, name="server")
    wait_server_online(broker)  # ingest has made the store: the token goes into a whole file
    token = cli("token", "create", "-c", str(site_file), "--role", "viewer", "--label", "t", env=env)
    wait_until(lambda: "disk_low" in kinds(port, token), 30, message="disk_low alert")
    [alert] = [a for a in open_alerts(port, token) if a["kind"] == "disk_low"]
    assert "MB free" in alert["message"] and str(site_file.parent / "data") in alert["message"]


def test_disk_low_has_hysteresis_and_clears(tmp_path, site_file):
    site = load_site(site_file)
    store = SqliteStore(tmp_path / "f.db")
    monitor = Monitor(site, store, NOW)
    minimum = site.alerts.disk_free_min_mb * MB
    Usage = namedtuple("Usage", "free")
    for free, opened_or_cleared, open_after in [
        (minimum + MB, False, False),
        (minimum - MB, True, True),
        (minimum + MB, False, True),  # within 10 % above the line: still low
        (int(minimum * 1.2), True, False),
    ]:
        assert monitor.check_disk(NOW, usage=lambda _path, f=free: Usage(f)) is opened_or_cleared
        assert ("disk_low" in {a["kind"] for a in alerts_payload(store)["alerts"]}) is open_after
