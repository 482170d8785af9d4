"""What ships under deploy/ works: systemd units verify, Mosquitto runs the secure config with certificates made
by the install guide's own openssl commands, and the logrotate file parses."""

from __future__ import annotations

import getpass
import grp
import os
import re
import shutil
import ssl
import subprocess
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall.demo.broker import LocalBroker, free_port, wait_for_port
from footfall.server.mqtt_accounts import MqttAccounts
from footfall.site import load_site
from tests.conftest import EXAMPLE_SITE, ROOT

DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALL_DOC = ROOT / "docs" / "install.md"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: .ci/run installs it")
    return path


# --- systemd ------------------------------------------------------------------------------------


def test_the_three_server_and_counter_units_exist():
    names = {unit.name for unit in UNITS}
    assert {"footfall-ingest.service", "footfall-web.service", "footfall-counter.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit, tmp_path):
    """`systemd-analyze verify` also checks that ExecStart= programs exist: the test provides stand-ins at a
    temporary path (same file name), everything else in the unit is verified as shipped."""
    analyze = need("systemd-analyze")
    text = unit.read_text()
    assert re.search(r"^Restart=always$", text, re.M), "units restart on failure"
    for program in set(re.findall(r"^Exec\w+=[-@:+!]*(/\S+)", text, re.M)):
        if not os.path.exists(program):
            stub = tmp_path / "bin" / program.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
            text = text.replace(program, str(stub))
    if "WatchdogSec=" in text:
        assert "Type=notify" in text, "a watchdog needs Type=notify (footfall/sdnotify.py)"
    copy = tmp_path / unit.name
    copy.write_text(text)
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert unit.name not in output, output  # no warnings about our unit


# --- Mosquitto with TLS -------------------------------------------------------------------------


def make_certificates(directory) -> None:
    """Run the install guide's openssl block (the fenced block after `<!-- test: tls -->`)."""
    need("openssl")
    doc = INSTALL_DOC.read_text()
    match = re.search(r"<!-- test: tls -->\s*```sh\n(.*?)```", doc, re.S)
    assert match, "docs/install.md lost its TLS block"
    env = {**os.environ, "BROKER_NAME": "localhost", "BROKER_IP": "127.0.0.1"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", match.group(1)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for name in ("ca.crt", "server.crt", "server.key"):
        assert (directory / name).exists()


def secure_config(tmp_path, accounts: MqttAccounts, plain: int, tls: int) -> str:
    """deploy/mosquitto/secure.conf with this test's files and ports (nothing else changed)."""
    certs = tmp_path / "certs"
    text = (DEPLOY / "mosquitto" / "secure.conf").read_text()
    replacements = {
        "/var/lib/footfall/mqtt/passwd": str(accounts.passwd_path),
        "/var/lib/footfall/mqtt/acl": str(accounts.acl_path),
        "/etc/mosquitto/certs/": f"{certs}/",
        "listener 1883 127.0.0.1": f"listener {plain} 127.0.0.1",
        "listener 8883": f"listener {tls} 127.0.0.1",
    }
    for old, new in replacements.items():
        assert old in text, f"secure.conf no longer has {old!r}"
        text = text.replace(old, new)
    assert "allow_anonymous false" in text and "persistence true" in text
    return text


def connect(port: int, username: str | None, password: str | None, ca: str | None) -> str | None:
    """Connect once; None when accepted, else the reason."""
    answered = threading.Event()
    result: list[str | None] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"t-{username}-{port}", protocol=mqtt.MQTTv311
    )
    if username:
        client.username_pw_set(username, password)
    if ca:
        client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)

    def on_connect(_c, _u, _f, reason_code, _p):
        result.append(str(reason_code) if reason_code.is_failure else None)
        answered.set()

    client.on_connect = on_connect
    client.connect("localhost" if ca else "127.0.0.1", port, 30)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
        return result[0]
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.integration
def test_mosquitto_runs_the_shipped_secure_config_with_tls(tmp_path):
    need("mosquitto")
    (tmp_path / "certs").mkdir()
    make_certificates(tmp_path / "certs")
    site_file = tmp_path / "site.toml"
    site_file.write_text(
        EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"')
    )
    accounts = MqttAccounts(load_site(site_file))
    server = accounts.ensure_servers()[0]["ingest"]
    device = accounts.add_device("door-main")
    plain, tls = free_port(), free_port()
    # LocalBroker adds footfall.conf, a user and persistence location; its own listener stays anonymous-free.
    broker = LocalBroker(
        tmp_path / "broker",
        kind="mosquitto",
        anonymous=False,
        extra_conf=secure_config(tmp_path, accounts, plain, tls),
    )
    broker.start()
    try:
        assert wait_for_port(plain) and wait_for_port(tls)
        ca = str(tmp_path / "certs" / "ca.crt")
        assert connect(tls, device.username, device.password, ca) is None  # a Pi, over TLS
        assert connect(plain, server.username, server.password, None) is None  # the server, on loopback
        assert connect(tls, None, None, ca) is not None  # anonymous: refused
        assert connect(plain, None, None, None) is not None
        assert connect(tls, device.username, "wrong", ca) is not None
        with pytest.raises(ssl.SSLError):
            connect(tls, device.username, device.password, str(tmp_path / "certs" / "server.crt"))  # wrong CA
    finally:
        broker.stop()


def test_bridge_example_bridges_the_site_topics():
    text = (DEPLOY / "mosquitto" / "bridge.conf.example").read_text()
    assert re.search(r"^connection \S+", text, re.M)
    assert re.search(r"^topic footfall/\S+/# out 1$", text, re.M)
    assert re.search(r"^cleansession false$", text, re.M)


def test_logrotate_file_parses(tmp_path):
    logrotate = shutil.which("logrotate") or pytest.fail("logrotate is not installed: .ci/run installs it")
    text = (DEPLOY / "logrotate" / "footfall").read_text()
    me, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    text = text.replace("su footfall footfall", f"su {me} {group}").replace(
        "/var/log/footfall", str(tmp_path)
    )
    (tmp_path / "ingest.log").write_text("x\n")
    conf = tmp_path / "footfall.logrotate"
    conf.write_text(text)
    result = subprocess.run(
        [logrotate, "-d", "-s", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr


def test_sdnotify_speaks_to_systemds_socket(tmp_path):
    import socket

    from footfall import sdnotify

    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": path})
        assert server.recv(100) == b"READY=1"
    assert not sdnotify.notify("READY=1", env={})  # outside systemd: nothing, no error
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}) == 60
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None


def test_prometheus_rules_use_only_metrics_footfall_exports(tmp_path):
    """deploy/prometheus: the scrape example has both jobs; every footfall_* name in the alert rules is one that
    the web's /metrics or ingest's metrics port really exports (rendered here from real registries)."""
    import re

    import yaml

    from footfall.server.ingest_service import IngestService
    from footfall.server.metrics import WebMetrics
    from footfall.server.store import SqliteStore
    from footfall.server.web.live import LocalHub
    from footfall.site import site_from_dict

    site = site_from_dict(
        {
            "site": {"id": "s", "name": "S"},
            "server": {"data_dir": str(tmp_path)},
            "rooms": [{"id": "hall", "name": "Hall", "capacity": 10}],
            "doors": [],
            "devices": [{"id": "door-a", "kind": "counter"}],
        }  # fmt: skip
    )
    store = SqliteStore(site.db_path)
    service = IngestService(site, store)
    text = WebMetrics(site, store, LocalHub()).render() + _ingest_text(service)
    exported = set(re.findall(rb"^# TYPE (footfall_\w+)", text, re.M))
    samples = set(re.findall(rb"^(footfall_\w+)", text, re.M))
    names = {n.decode() for n in exported | samples}
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "footfall-rules.yml").read_text())
    used = set()
    for rule in rules["groups"][0]["rules"]:
        used |= set(re.findall(r"footfall_\w+", rule["expr"]))
    assert used and used <= names, used - names
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert {job["job_name"] for job in scrape["scrape_configs"]} == {"footfall-web", "footfall-ingest"}


def _ingest_text(service) -> bytes:
    from prometheus_client import generate_latest

    service.metrics.observe(3, 0.01, [0.5, 1.0, 2.0])
    return generate_latest(service.metrics.registry)
