"""Hole 1 of #11: on the shipped secure broker a client id is locked to its account, so a device cannot take over
ingest's session. Real Mosquitto with deploy/mosquitto/secure.conf, accounts made by `footfall device add`, real
ingest and web processes, events read back from the SQLite file.

The control test runs the same config without `use_username_as_clientid` and shows the takeover the main test
guards against: there the device's CONNECT closes ingest's connection.
"""

from __future__ import annotations

import json
import re
import sqlite3
import ssl
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall.clock import format_ts, utcnow
from footfall.demo.broker import LocalBroker, free_port, wait_for_port
from footfall.errors import ConfigError
from footfall.server.mqtt_accounts import Credentials, MqttAccounts
from footfall.server.web.live import LiveHub, web_link_settings
from footfall.site import load_site
from tests.conftest import footfall_env, wait_until
from tests.test_deploy import make_certificates, need, secure_config

pytestmark = pytest.mark.integration
SITE = "dongsi"
INGEST_ID = f"footfall-server-{SITE}-ingest"  # the id ingest asks for (server/ingest_service.py)
EVENTS = 1000
TAKEOVERS = 8
LOCK = "use_username_as_clientid true\n"


def device_add(site_file, device: str, port: int) -> None:
    """`footfall device add` exactly as the install guide runs it (plain MQTT here: the test's broker is local)."""
    subprocess.run(
        [sys.executable, "-m", "footfall.cli", "device", "add", device, "-c", str(site_file)]
        + ["--broker", "127.0.0.1", "--port", str(port), "--no-tls"],
        check=True,
        capture_output=True,
        timeout=60,
    )


class Secure:
    """The shipped secure broker, its accounts and the plain (loopback) port the server's processes use."""

    def __init__(self, tmp_path, site_file, locked: bool = True):
        need("mosquitto")
        (tmp_path / "certs").mkdir()
        make_certificates(tmp_path / "certs")
        self.plain, self.tls = free_port(), free_port()
        self.ca = str(tmp_path / "certs" / "ca.crt")
        for device in ("door-main", "door-book-bar"):
            device_add(site_file, device, self.tls)
        site = load_site(site_file)
        accounts = MqttAccounts(site)
        self.servers, _ = accounts.ensure_servers()
        devices = json.loads((accounts.dir / "accounts.json").read_text())["devices"]
        assert set(devices) == {"door-main", "door-book-bar"}
        self.device = {d: self._device_creds(accounts, d) for d in devices}
        conf = secure_config(tmp_path, accounts, self.plain, self.tls)
        assert conf.count(LOCK) == 2, "secure.conf locks the client id on both listeners"
        if not locked:
            conf = conf.replace(LOCK, "")
        self.broker = LocalBroker(tmp_path / "broker", kind="mosquitto", anonymous=False, extra_conf=conf)
        self.broker.start()
        assert wait_for_port(self.plain) and wait_for_port(self.tls)

    @staticmethod
    def _device_creds(accounts: MqttAccounts, device: str) -> Credentials:
        text = (accounts.configs_dir / f"{device}.toml").read_text()
        username = re.search(r'^username = "(.+)"$', text, re.M).group(1)
        password = re.search(r'^password = "(.+)"$', text, re.M).group(1)
        return Credentials(username, password)

    def env(self, **extra: str) -> dict[str, str]:
        ingest, web = self.servers["ingest"], self.servers["web"]
        return footfall_env(
            self.broker,
            FOOTFALL_MQTT_PORT=str(self.plain),
            FOOTFALL_MQTT_USERNAME=ingest.username,
            FOOTFALL_MQTT_PASSWORD=ingest.password,
            FOOTFALL_MQTT_WEB_USERNAME=web.username,
            FOOTFALL_MQTT_WEB_PASSWORD=web.password,
            **extra,
        )

    def stop(self) -> None:
        self.broker.stop()


class Client:
    """A paho client that records its CONNACK and whether the broker closed its connection."""

    def __init__(
        self, port: int, creds: Credentials, client_id: str, clean_session: bool, ca: str | None = None
    ):
        self.answered, self.dropped = threading.Event(), threading.Event()
        self.refused: str | None = None
        self.messages: list[bytes] = []
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        self.c.username_pw_set(creds.username, creds.password)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *_a: self.dropped.set()
        self.c.on_message = lambda _c, _u, m: self.messages.append(m.payload)
        self.c.reconnect_delay_set(60, 60)  # a dropped client stays dropped: the test looks at that one drop
        if ca:  # the Pis' way in: TLS on the LAN listener, the certificate made for "localhost" here
            self.c.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.c.connect("localhost" if ca else "127.0.0.1", port, 30)
        self.c.loop_start()
        assert self.answered.wait(10), "no CONNACK"

    def _on_connect(self, _c, _u, _flags, reason_code, _props) -> None:
        self.refused = str(reason_code) if reason_code.is_failure else None
        self.answered.set()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def crossing(seq: int) -> bytes:
    body = {
        "v": 1,
        "id": f"main-{seq}",
        "seq": seq,
        "ts": format_ts(utcnow()),
        "type": "crossing",
        "direction": "in",
    }
    return json.dumps(body).encode()


def stored(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM events WHERE device='door-main'").fetchone()[0]
        except sqlite3.OperationalError:  # ingest has not made its tables yet
            return 0


def connections(log: str, port: int) -> int:
    return len(re.findall(rf"connected to 127\.0\.0\.1:{port} as ", log))


def test_a_device_using_ingests_client_id_gets_its_own_and_every_event_is_stored(tmp_path, site_file, procs):
    secure = Secure(tmp_path, site_file)
    try:
        env = secure.env(FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{free_port()}")
        ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
        web = procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
        # The honest door may read ingest's retained status: ingest is up once "online" arrives.
        door = Client(secure.plain, secure.device["door-main"], "door-main", clean_session=False)
        assert door.refused is None
        door.c.subscribe(f"footfall/{SITE}/server/status", 1)
        wait_until(lambda: b"online" in door.messages, 30, message="ingest online")
        wait_until(lambda: connections(web.output(), secure.plain) == 1, 30, message="web connected")

        attacks = []
        for seq in range(EVENTS):
            door.c.publish(f"footfall/{SITE}/device/door-main/event", crossing(seq), qos=1).wait_for_publish(
                10
            )
            if seq % (EVENTS // TAKEOVERS) == 0 and len(attacks) < TAKEOVERS:
                # The book-bar door's account asks for ingest's id with a clean session, as the hostile test did.
                # Over TLS as a Pi would, and on the loopback listener too (both lock the id), asking for the id
                # ingest asks for and for the one the broker gives it (its user name).
                via = (
                    {"port": secure.tls, "ca": secure.ca} if len(attacks) % 2 == 0 else {"port": secure.plain}
                )
                wanted = INGEST_ID if len(attacks) % 4 < 2 else secure.servers["ingest"].username
                attack = Client(
                    creds=secure.device["door-book-bar"], client_id=wanted, clean_session=True, **via
                )
                attacks.append(attack.refused)
                attack.close()
        assert attacks == [None] * TAKEOVERS  # accepted, under its own id (the broker's log below)
        db = tmp_path / "data" / "footfall.db"
        wait_until(lambda: stored(db) == EVENTS, 60, message=f"all {EVENTS} events stored")

        broker_log = (tmp_path / "broker" / "mosquitto.log").read_text(errors="replace")
        assert broker_log.count("as device.dongsi.door-book-bar (") >= TAKEOVERS
        assert f"as {INGEST_ID} " not in broker_log and "closing old connection" not in broker_log
        # Ingest and the web each kept the one connection they made: nobody closed either of them.
        assert ingest.alive() and web.alive()
        assert connections(ingest.output(), secure.plain) == 1, ingest.output()[-2000:]
        assert connections(web.output(), secure.plain) == 1, web.output()[-2000:]
        assert not door.dropped.is_set() and b"offline" not in door.messages
        door.close()
    finally:
        secure.stop()


def test_without_the_lock_the_same_connect_closes_ingests_connection(tmp_path, site_file):
    """The control: secure.conf minus `use_username_as_clientid` lets a device end ingest's session."""
    secure = Secure(tmp_path, site_file, locked=False)
    try:
        ingest = Client(secure.plain, secure.servers["ingest"], INGEST_ID, clean_session=False)
        assert ingest.refused is None
        attack = Client(secure.plain, secure.device["door-book-bar"], INGEST_ID, clean_session=True)
        assert attack.refused is None
        assert ingest.dropped.wait(10), "the device's CONNECT closed ingest's connection"
        attack.close()
        ingest.close()
    finally:
        secure.stop()


def test_ingest_and_the_web_have_an_account_each_with_its_own_acl(tmp_path, site_file):
    device_add(site_file, "door-main", 8883)
    accounts = MqttAccounts(load_site(site_file))
    servers, created = accounts.ensure_servers()
    assert not created  # `device add` made them
    assert {p: c.username for p, c in servers.items()} == {
        "ingest": "server.dongsi.ingest",
        "web": "server.dongsi.web",
    }
    assert servers["ingest"].password != servers["web"].password
    users = [line.split(":")[0] for line in accounts.passwd_path.read_text().splitlines()]
    assert sorted(users) == ["device.dongsi.door-main", "server.dongsi.ingest", "server.dongsi.web"]
    acl = accounts.acl_path.read_text().split("\n\n")
    web = next(block for block in acl if block.startswith("user server.dongsi.web"))
    # The web publishes only server commands; room state, alerts, schedule and acks are ingest's alone.
    assert [line for line in web.splitlines() if line.startswith("topic write")] == [
        "topic write footfall/dongsi/server/cmd"
    ]
    assert "readwrite" not in web
    # `footfall device server` prints both accounts' lines for site.toml.
    out = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "device", "server", "-c", str(site_file)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for key, value in (
        ("username", servers["ingest"].username),
        ("password", servers["ingest"].password),
        ("web_username", servers["web"].username),
        ("web_password", servers["web"].password),
    ):
        assert re.search(rf'^{key} = "{re.escape(value)}"', out, re.M), out


def test_the_web_refuses_ingests_account(site_file):
    text = site_file.read_text().replace(
        "[mqtt]\n", '[mqtt]\nusername = "server.dongsi.ingest"\npassword = "x"\n'
    )
    site_file.write_text(text)
    site = load_site(site_file)
    with pytest.raises(ConfigError, match="web_username"):
        LiveHub(site)
    site_file.write_text(
        text.replace("[mqtt]\n", '[mqtt]\nweb_username = "server.dongsi.web"\nweb_password = "y"\n')
    )
    settings = web_link_settings(load_site(site_file))
    assert (settings.username, settings.password) == ("server.dongsi.web", "y")


def test_the_one_server_account_of_before_is_replaced_by_two(site_file):
    """Accounts made before #11 had one `server.<site>` for both processes: it goes at the next change."""
    site = load_site(site_file)
    accounts = MqttAccounts(site)
    accounts.dir.mkdir(parents=True)
    old = {
        "site": SITE,
        "server": {"username": "server.dongsi", "password": "p", "hash": "$7$h"},
        "devices": {},
    }
    accounts.accounts_path.write_text(json.dumps(old))
    accounts.passwd_path.write_text("server.dongsi:$7$h\n")
    servers, created = accounts.ensure_servers()
    assert created and set(servers) == {"ingest", "web"}
    users = [line.split(":")[0] for line in accounts.passwd_path.read_text().splitlines()]
    assert sorted(users) == ["server.dongsi.ingest", "server.dongsi.web"]
    assert "user server.dongsi\n" not in accounts.acl_path.read_text()
    assert "server" not in json.loads(accounts.accounts_path.read_text())
