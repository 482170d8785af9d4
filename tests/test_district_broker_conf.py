"""The district broker's config from `footfall district accounts --broker-conf`, run alone by a real Mosquitto as
the setup guide runs it: a TLS listener for the sites (a throwaway CA and certificate made by openssl) and a
loopback listener for the ingest workers, each locking client ids to user names. The control removes the lock
line after one listener and shows the takeover the main test guards against."""

from __future__ import annotations

import getpass
import json
import re
import signal
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

from footfall.cli import main
from footfall.demo.broker import free_port, wait_for_port
from footfall.server.district import DistrictAccounts, site_username
from footfall.server.mqtt_accounts import Credentials
from tests.conftest import wait_until
from tests.test_deploy import connect, make_certificates, need
from tests.test_mqtt_client_ids import Client

pytestmark = pytest.mark.integration
LOCK = "use_username_as_clientid true"
WORKER = "district.ingest.1"
EVENTS = "footfall/+/device/+/event"


class District:
    """Accounts, a certificate and the generated config, in a Mosquitto that reads nothing else."""

    def __init__(self, tmp_path, unlock: str | None = None):
        mosquitto = need("mosquitto")
        certs = tmp_path / "certs"
        certs.mkdir()
        make_certificates(certs)
        self.ca = str(certs / "ca.crt")
        self.ports = {"tls": free_port(), "local": free_port()}
        accounts = DistrictAccounts(tmp_path / "accounts")
        self.site = {s: Credentials(site_username(s), accounts.add_site(s)) for s in ("dongsi", "jiaodaokou")}
        conf = tmp_path / "district.conf"
        args = [
            "district", "accounts", "--dir", str(accounts.dir), "--workers", "1", "--broker-conf", str(conf),
            "--tls-port", str(self.ports["tls"]), "--tls-bind", "127.0.0.1", "--certfile", str(certs / "server.crt"),
            "--keyfile", str(certs / "server.key"), "--cafile", self.ca,
            "--local-port", str(self.ports["local"]), "--persistence-dir", str(tmp_path / "data"),
        ]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        password = json.loads(accounts.accounts_path.read_text())["workers"][WORKER]["password"]
        self.worker = Credentials(WORKER, password)
        self.text = text = conf.read_text()
        if unlock:  # the control: this listener without the lock line that follows it
            head = self.listener_line(unlock)
            assert f"{head}\n{LOCK}\n" in text
            text = text.replace(f"{head}\n{LOCK}\n", f"{head}\n")
        # Only for the test, run as root: Mosquitto started as root would switch to `mosquitto`, which cannot read
        # the temp folder (a global option: it changes no listener).
        conf.write_text(text + f"user {getpass.getuser()}\n")
        (tmp_path / "data").mkdir()
        self.log = tmp_path / "mosquitto.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [mosquitto, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if not all(wait_for_port(port) for port in self.ports.values()):
            self.stop()
            pytest.fail(self.log.read_text())

    def listener_line(self, name: str) -> str:
        return next(
            line for line in self.text.splitlines() if line.startswith(f"listener {self.ports[name]} ")
        )

    def via(self, name: str) -> dict:
        return {"port": self.ports[name], "ca": self.ca} if name == "tls" else {"port": self.ports[name]}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


@pytest.fixture
def district(tmp_path):
    d = District(tmp_path)
    yield d
    d.stop()


def subscribed(client: Client, topic: str) -> None:
    done = threading.Event()
    client.c.on_subscribe = lambda *_a: done.set()
    client.c.subscribe(topic, 1)
    assert done.wait(10), "no SUBACK"


def publish(client: Client, topic: str, payload: bytes) -> None:
    client.c.publish(topic, payload, qos=1).wait_for_publish(10)


def test_the_generated_config_opens_only_its_listeners_each_locking_client_ids(district):
    lines = district.text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("listener ")]
    assert [lines[i] for i in heads] == [
        f"listener {district.ports['tls']} 127.0.0.1",
        f"listener {district.ports['local']} 127.0.0.1",
    ]
    assert all(lines[i + 1] == LOCK for i in heads)
    # Nothing above the first listener is a listener option (it would open a default listener on 1883).
    listener_options = ("use_username_as_clientid", "certfile", "keyfile", "cafile", "tls_version")
    assert not any(line.startswith(listener_options) for line in lines[: heads[0]])
    tls_block = lines[heads[0] : heads[1]]
    assert {line.split()[0] for line in tls_block if line} >= {"certfile", "keyfile", "cafile", "tls_version"}
    assert not any(line.startswith(listener_options[1:]) for line in lines[heads[1] :])
    opened = set(
        map(int, re.findall(r"Opening ipv[46] listen socket on port (\d+)", district.log.read_text()))
    )
    assert opened == set(district.ports.values())
    for name in ("tls", "local"):  # no anonymous client on either
        assert connect(district.ports[name], None, None, district.via(name).get("ca")), name


def test_a_site_publishes_over_tls_only_under_its_own_prefix(district):
    worker = Client(district.ports["local"], district.worker, WORKER, clean_session=True)
    assert worker.refused is None
    subscribed(worker, f"$share/district-ingest/{EVENTS}")
    site = Client(
        creds=district.site["dongsi"], client_id="site.dongsi", clean_session=False, **district.via("tls")
    )
    assert site.refused is None
    publish(site, "footfall/jiaodaokou/device/door-main/event", b"foreign")
    publish(site, "footfall/dongsi/device/door-main/event", b"own")
    # One connection, in order: had "foreign" been let through, it would have arrived before "own".
    wait_until(lambda: worker.messages, 10, message="the site's event")
    assert worker.messages == [b"own"]
    site.close()
    worker.close()


def takeover(district: District, via: str) -> tuple[bool, int]:
    """A site connects on `via` asking for the worker's client id, with a clean session. Returns whether the
    worker's connection was closed, and how many of 3 events published afterwards its session still holds."""
    worker = Client(district.ports["local"], district.worker, WORKER, clean_session=False)
    assert worker.refused is None
    subscribed(worker, EVENTS)
    attack = Client(creds=district.site["dongsi"], client_id=WORKER, clean_session=True, **district.via(via))
    assert attack.refused is None  # accepted either way: locked, under its own id
    dropped = worker.dropped.wait(2)
    attack.close()
    worker.close()  # a persistent session keeps its subscription and queues what arrives meanwhile
    site = Client(
        creds=district.site["dongsi"], client_id="site.dongsi", clean_session=True, **district.via("tls")
    )
    for n in range(3):
        publish(site, "footfall/dongsi/device/door-main/event", f"queued-{n}".encode())
    site.close()
    back = Client(district.ports["local"], district.worker, WORKER, clean_session=False)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(back.messages) < 3:
        time.sleep(0.05)
    back.close()
    return dropped, len(back.messages)


@pytest.mark.parametrize("via", ["tls", "local"])
def test_no_account_takes_over_another_accounts_session_on_any_listener(district, via):
    dropped, kept = takeover(district, via)
    assert not dropped, "the worker kept its connection"
    assert kept == 3, "and its session: the events queued while it was away arrived"
    log = district.log.read_text()
    # The worker's two connections, and the site's two (the attacker's under its own id, then the publisher's).
    assert log.count(f"as {WORKER} (") == 2 and log.count("as site.dongsi (") == 2


@pytest.mark.parametrize("via", ["tls", "local"])
def test_without_the_lock_after_that_listener_the_same_connect_ends_the_session(tmp_path, via):
    """The control: the generated config minus the one line after the attacker's listener."""
    district = District(tmp_path, unlock=via)
    try:
        dropped, kept = takeover(district, via)
        assert dropped and kept == 0, "the site's clean CONNECT closed the worker and threw its session away"
    finally:
        district.stop()


def test_accounts_refuses_a_broker_conf_it_cannot_make_safe(tmp_path):
    runner = CliRunner()
    base = ["district", "accounts", "--dir", str(tmp_path / "acc")]
    conf = ["--broker-conf", str(tmp_path / "d.conf")]
    pem = ["--certfile", __file__, "--keyfile", __file__]  # any existing files: nothing is written
    cases = {
        "--certfile and --keyfile": conf,
        "not in conf.d/": ["--broker-conf", str(tmp_path / "conf.d" / "d.conf"), "--tls-port", "0"],
        "needs a listener": [*conf, "--tls-port", "0", "--local-port", "0"],
        "must differ": [*conf, *pem, "--tls-port", "1883"],
    }
    for message, extra in cases.items():
        result = runner.invoke(main, base + extra)
        assert result.exit_code != 0 and message in result.output, (message, result.output)
    assert not (tmp_path / "d.conf").exists()
    with pytest.raises(ValueError, match="at least one listener"):
        DistrictAccounts(tmp_path / "acc").broker_config([])


def test_the_lock_above_every_listener_opens_an_extra_listener_on_1883_instead(tmp_path):
    """Why each lock line follows its listener: the old layout, one line at the top (with per_listener_settings
    false), sets the implicit default listener, which Mosquitto then opens as well, on port 1883."""
    district = District(tmp_path)
    district.stop()
    conf = tmp_path / "district.conf"
    text = conf.read_text()
    old = text.replace(f"\n{LOCK}\n", "\n").replace(
        "per_listener_settings false\n", f"per_listener_settings false\n{LOCK}\n"
    )
    assert old.count(LOCK) == 1 and old.index(LOCK) < old.index("\nlistener ")
    conf.write_text(old)
    log = tmp_path / "old.log"
    with open(log, "wb") as out:  # it exits when something already holds 1883 (the machine's own broker)
        proc = subprocess.Popen([need("mosquitto"), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "listen socket on port 1883." in log.read_text(), 10, message=log.read_text())
    finally:
        proc.terminate()
        proc.wait(10)
