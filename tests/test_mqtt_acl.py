"""The generated Mosquitto password file and ACL, against a real Mosquitto with no anonymous access.

Denied publishes are dropped silently by Mosquitto (MQTT 3.1.1 has no way to say no), so each "must not receive"
check is ordered: the forbidden message is acknowledged by the broker first, then an allowed marker is sent on the
same path; when the marker arrives, the forbidden message would have arrived before it. Nothing sleeps.
"""

from __future__ import annotations

import queue
import shutil
import signal
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall.demo.broker import LocalBroker
from footfall.server.mqtt_accounts import Credentials, MqttAccounts, check_mosquitto_hash, mosquitto_hash
from footfall.site import load_site
from tests.conftest import EXAMPLE_SITE, wait_until

pytestmark = pytest.mark.integration
SITE = "dongsi"
BASE = f"footfall/{SITE}"


class Client:
    """A paho client that records what it receives and how its CONNECT was answered."""

    def __init__(self, port: int, creds: Credentials | None, name: str):
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.answered = threading.Event()
        self.refused: str | None = None
        self.subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311)
        if creds is not None:
            self.c.username_pw_set(creds.username, creds.password)
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.c.on_subscribe = lambda *_a: self.subscribed.set()
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def _on_connect(self, _c, _u, _flags, reason_code, _props) -> None:
        self.refused = str(reason_code) if reason_code.is_failure else None
        self.answered.set()

    def connected(self) -> bool:
        assert self.answered.wait(10), "no CONNACK"
        return self.refused is None

    def subscribe(self, *topics: str) -> None:
        for topic in topics:
            self.subscribed.clear()
            self.c.subscribe(topic, 1)
            assert self.subscribed.wait(10)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)  # PUBACK: the broker has handled it (delivered or dropped)
        assert info.is_published()

    def next_message(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def site(tmp_path):
    text = EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"')
    path = tmp_path / "site.toml"
    path.write_text(text)
    return load_site(path)


@pytest.fixture
def accounts(site):
    return MqttAccounts(site)


@pytest.fixture
def secure_broker(tmp_path, accounts):
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: .ci/run installs it (apt-get install mosquitto)")
    accounts.ensure_servers()
    conf = f"password_file {accounts.passwd_path}\nacl_file {accounts.acl_path}\n"
    broker = LocalBroker(tmp_path / "broker", kind="mosquitto", anonymous=False, extra_conf=conf).start()
    yield broker
    broker.stop()


@pytest.fixture
def clients(secure_broker):
    made: list[Client] = []

    def make(creds: Credentials | None, name: str) -> Client:
        client = Client(secure_broker.port, creds, name)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def server_creds(accounts: MqttAccounts) -> Credentials:
    return accounts.ensure_servers()[0]["ingest"]


def register(broker: LocalBroker, accounts: MqttAccounts, *device_ids: str) -> list[Credentials]:
    """Add devices, make Mosquitto reload its files, and wait until it has (the last one can connect)."""
    creds = [accounts.add_device(ident) for ident in device_ids]
    broker.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _can_connect(broker.port, creds[-1]), message="Mosquitto reloaded its password file")
    return creds


def _can_connect(port: int, creds: Credentials) -> bool:
    probe = Client(port, creds, "probe")
    try:
        return probe.connected()
    finally:
        probe.close()


def test_hash_matches_mosquitto_format():
    encoded = mosquitto_hash("secret1", bytes(range(12)))
    assert encoded.startswith("$7$101$AAECAwQFBgcICQoL$")
    assert check_mosquitto_hash("secret1", encoded)
    assert not check_mosquitto_hash("secret2", encoded)


def test_anonymous_and_wrong_password_are_refused(clients, accounts):
    assert not clients(None, "anon").connected()
    creds = server_creds(accounts)
    assert not clients(Credentials(creds.username, "wrong"), "wrong").connected()
    assert clients(creds, "server").connected()


def test_device_cannot_publish_as_another_device(clients, accounts, secure_broker):
    (a_creds,) = register(secure_broker, accounts, "door-main")
    a = clients(a_creds, "a")
    server = clients(server_creds(accounts), "server")
    assert a.connected() and server.connected()
    server.subscribe(f"{BASE}/device/+/event", f"{BASE}/device/+/status")
    for forbidden in ("event", "status"):
        a.publish(f"{BASE}/device/door-book-bar/{forbidden}", b"forged")
        a.publish(f"{BASE}/device/door-main/{forbidden}", b"marker")
        assert server.next_message() == (f"{BASE}/device/door-main/{forbidden}", b"marker")
    # Nor anything that belongs to the server.
    server.subscribe(f"{BASE}/room/+/state", f"{BASE}/schedule", f"{BASE}/device/door-main/config")
    a.publish(f"{BASE}/room/hall/state", b"forged")
    a.publish(f"{BASE}/schedule", b"forged")
    a.publish(f"{BASE}/device/door-main/config", b"forged")
    a.publish(f"{BASE}/device/door-main/event", b"marker2")
    assert server.next_message() == (f"{BASE}/device/door-main/event", b"marker2")


def test_device_cannot_read_other_devices(clients, accounts, secure_broker):
    a_creds, b_creds = register(secure_broker, accounts, "door-main", "door-book-bar")
    server = clients(server_creds(accounts), "server")
    a, b = clients(a_creds, "a"), clients(b_creds, "b")
    assert a.connected() and b.connected() and server.connected()
    a.subscribe("#", f"{BASE}/device/+/event")
    server.subscribe(f"{BASE}/device/+/event")
    b.publish(f"{BASE}/device/door-book-bar/event", b"b-event")
    assert server.next_message() == (f"{BASE}/device/door-book-bar/event", b"b-event")  # the server reads it
    server.publish(f"{BASE}/room/hall/state", b"state")  # A may read room states: the marker
    assert a.next_message() == (f"{BASE}/room/hall/state", b"state")
    # A reads what the server sends it, and not what it sends B.
    server.publish(f"{BASE}/device/door-book-bar/cmd", b"for-b")
    server.publish(f"{BASE}/device/door-main/cmd", b"for-a")
    assert a.next_message() == (f"{BASE}/device/door-main/cmd", b"for-a")


def test_only_the_server_confirms_and_only_to_the_device_itself(clients, accounts, secure_broker):
    a_creds, b_creds = register(secure_broker, accounts, "door-main", "door-book-bar")
    server = clients(server_creds(accounts), "server")
    a, b = clients(a_creds, "a"), clients(b_creds, "b")
    assert a.connected() and b.connected() and server.connected()
    a.subscribe(f"{BASE}/device/+/ack")
    b.subscribe(f"{BASE}/device/door-book-bar/ack")
    # A may not confirm B's events (B would delete them), nor its own.
    a.publish(f"{BASE}/device/door-book-bar/ack", b"forged")
    a.publish(f"{BASE}/device/door-main/ack", b"forged")
    server.publish(f"{BASE}/device/door-book-bar/ack", b"for-b")
    assert b.next_message() == (f"{BASE}/device/door-book-bar/ack", b"for-b")
    server.publish(f"{BASE}/device/door-main/ack", b"for-a")
    assert a.next_message() == (f"{BASE}/device/door-main/ack", b"for-a")  # not B's, not the forgeries
    assert a.messages.empty() and b.messages.empty()


def test_server_account_publishes_state_schedule_config(clients, accounts, secure_broker):
    (creds,) = register(secure_broker, accounts, "kiosk-hall")
    server, kiosk = clients(server_creds(accounts), "server"), clients(creds, "kiosk")
    assert server.connected() and kiosk.connected()
    kiosk.subscribe(f"{BASE}/schedule", f"{BASE}/room/+/state", f"{BASE}/device/kiosk-hall/config")
    for topic in (f"{BASE}/schedule", f"{BASE}/room/hall/state", f"{BASE}/device/kiosk-hall/config"):
        server.publish(topic, b"x", retain=True)
        assert kiosk.next_message() == (topic, b"x")


def test_removed_device_is_refused(clients, accounts, secure_broker):
    (creds,) = register(secure_broker, accounts, "door-main")
    still_open = clients(creds, "door")
    assert still_open.connected()
    accounts.remove_device("door-main")
    secure_broker.proc.send_signal(signal.SIGHUP)
    assert wait_until(
        lambda: not _can_connect(secure_broker.port, creds), message="device refused after reload"
    )
    # A new password revokes the old one.
    old = accounts.add_device("door-book-bar")
    (new,) = register(secure_broker, accounts, "door-book-bar")
    assert _can_connect(secure_broker.port, new)
    assert not _can_connect(secure_broker.port, old)
    # Mosquitto 2.0 also drops the connection the device still had open when it rereads its files.
    assert wait_until(lambda: not still_open.c.is_connected(), message="open connection dropped")


def test_the_web_account_only_asks_ingest_and_reads_what_it_shows(clients, accounts, secure_broker):
    """The web's own account (#11): it may send ingest server commands and read room states, device status,
    alerts and server status; room state, alerts, schedule and acks stay ingest's alone."""
    (device_creds,) = register(secure_broker, accounts, "door-main")
    servers = accounts.ensure_servers()[0]
    ingest, web = clients(servers["ingest"], "ingest"), clients(servers["web"], "web")
    door = clients(device_creds, "door")
    assert ingest.connected() and web.connected() and door.connected()
    ingest.subscribe(f"{BASE}/server/cmd")
    door.subscribe(f"{BASE}/room/+/state", f"{BASE}/schedule", f"{BASE}/device/door-main/ack")
    web.subscribe(
        f"{BASE}/room/+/state", f"{BASE}/device/+/status", f"{BASE}/alerts", f"{BASE}/server/status"
    )
    for forged in ("room/hall/state", "schedule", "device/door-main/ack", "alerts", "server/status"):
        web.publish(f"{BASE}/{forged}", b"forged-by-web")
    web.publish(f"{BASE}/server/cmd", b'{"v":1,"cmd":"republish-alerts"}')
    assert ingest.next_message() == (f"{BASE}/server/cmd", b'{"v":1,"cmd":"republish-alerts"}')
    # What ingest publishes reaches the web (and the door), and none of the web's forgeries did before it.
    for topic in (f"{BASE}/room/hall/state", f"{BASE}/alerts", f"{BASE}/server/status"):
        ingest.publish(topic, b"from-ingest")
        assert web.next_message() == (topic, b"from-ingest")
    door.publish(f"{BASE}/device/door-main/status", b"status")
    assert web.next_message() == (f"{BASE}/device/door-main/status", b"status")
    assert door.next_message() == (f"{BASE}/room/hall/state", b"from-ingest")
    assert door.messages.empty()
