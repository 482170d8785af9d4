"""What a district broker killed outright (kill -9, the OOM killer) keeps: a real Mosquitto runs the config
`footfall district accounts --broker-conf` writes, alone, is SIGKILLed and restarted on the same files, and an ingest
worker's persistent session on the workers' `$share/` subscription comes back with what the site had published.

The generated config saves every 2 s (`autosave_interval 1`): events accepted 3 s before the kill all arrive, those
accepted just after a save are lost. The controls: the same config without its autosave lines (Mosquitto's default,
1,800 s) loses the session and its events under the same kill; with `autosave_on_changes` the messages in flight to a
connected worker that has not acknowledged them are not saved."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from footfall.cli import main
from footfall.demo.broker import LocalBroker, free_port, wait_for_port
from footfall.server.district import (
    AUTOSAVE_INTERVAL,
    BridgeSettings,
    DistrictAccounts,
    Listener,
    bridge_config,
    site_username,
)
from tests.conftest import wait_until
from tests.test_deploy import need

pytestmark = pytest.mark.integration
WORKER = "district.ingest.1"
OBSERVER = "district.ingest.2"  # a plain subscription, clean session: sees each event the broker accepted
EVENTS = "footfall/+/device/+/event"
SHARED = f"$share/district-ingest/{EVENTS}"
TOPIC = "footfall/dongsi/device/door-main/event"
AUTOSAVE = ("autosave_on_changes false\n", f"autosave_interval {AUTOSAVE_INTERVAL}\n")
WINDOW = 3.0  # s: past the 2 s between saves, and a save of a few hundred messages takes milliseconds


def without_autosave(text: str) -> str:
    """The config as generated before this setting: Mosquitto's default applies (a save every 1,800 s)."""
    assert all(line in text for line in AUTOSAVE)
    for line in AUTOSAVE:
        text = text.replace(line, "")
    return text


def on_changes(text: str) -> str:
    """Saves counted in changes instead, the tightest count: a save after any loop that changed something."""
    return text.replace("".join(AUTOSAVE), "autosave_on_changes true\nautosave_interval 1\n")


class DistrictBroker:
    """The generated config (only the ingest listener, on the loopback) run alone; killed and restarted."""

    def __init__(self, tmp_path, edit=None):
        self.mosquitto = need("mosquitto")
        tmp_path.mkdir(parents=True, exist_ok=True)
        accounts = DistrictAccounts(tmp_path / "accounts")
        self.site = (site_username("dongsi"), accounts.add_site("dongsi"))
        self.port = free_port()
        self.conf, self.data = tmp_path / "district.conf", tmp_path / "data"
        args = [
            "district", "accounts", "--dir", str(accounts.dir), "--workers", "2", "--broker-conf", str(self.conf),
            "--tls-port", "0", "--local-port", str(self.port), "--persistence-dir", str(self.data),
        ]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        workers = json.loads(accounts.accounts_path.read_text())["workers"]
        self.worker = (WORKER, workers[WORKER]["password"])
        self.observer = (OBSERVER, workers[OBSERVER]["password"])
        self.text = text = self.conf.read_text()
        if edit:
            text = edit(text)
        # Run as the test's user: Mosquitto started as root would switch to `mosquitto` (a global option).
        self.conf.write_text(text + f"user {getpass.getuser()}\n")
        self.data.mkdir()
        self.log = tmp_path / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wrapper: tuple[str, ...] = ()) -> DistrictBroker:
        """`wrapper`: a command that runs Mosquitto (strace); signals go to the whole process group."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*wrapper, self.mosquitto, "-c", str(self.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_for_port(self.port):
            self.stop()
            pytest.fail(self.log.read_text())
        return self

    def kill(self) -> None:
        """No chance to save: what is not in mosquitto.db yet is gone."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)

    def saved(self) -> int | None:
        """The persistence file's inode: each save writes mosquitto.db.new, fsyncs it and renames it over the file."""
        try:
            return os.stat(self.data / "mosquitto.db").st_ino
        except FileNotFoundError:
            return None

    def next_save(self, timeout: float = 5.0) -> float:
        """Wait for the next save to land; its time (monotonic)."""
        before = self.saved()
        wait_until(lambda: self.saved() != before, timeout, interval=0.002, message="a save of mosquitto.db")
        return time.monotonic()


class Peer:
    """A paho client with an account. `ack` False: the worker receives and never acknowledges (a batch not yet
    committed); the broker keeps those messages in flight."""

    def __init__(self, port: int, creds: tuple[str, str], clean_session: bool, ack: bool = True):
        self.messages: list[bytes] = []
        self.session_present: bool | None = None
        answered = threading.Event()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=creds[0],
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
            manual_ack=not ack,
        )
        self.c.max_inflight_messages_set(1000)
        self.c.username_pw_set(*creds)
        self.c.on_message = lambda _c, _u, m: self.messages.append(m.payload)

        def connected(_c, _u, flags, reason_code, _p) -> None:
            assert not reason_code.is_failure, reason_code
            self.session_present = flags.session_present
            answered.set()

        self.c.on_connect = connected
        self.c.reconnect_delay_set(60, 60)  # a dropped client stays dropped
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()
        assert answered.wait(10), "no CONNACK"

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *_a: done.set()
        self.c.subscribe(topic, 1)
        assert done.wait(10), "no SUBACK"

    def publish(self, payloads: list[bytes]) -> None:
        """Each PUBACKed: the district broker has taken responsibility for it (a bridge then drops its copy)."""
        for info in [self.c.publish(TOPIC, p, qos=1) for p in payloads]:
            info.wait_for_publish(10)
            assert info.is_published()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def events(tag: str, n: int) -> list[bytes]:
    return [
        json.dumps({"v": 1, "id": f"{tag}-{i}", "type": "crossing", "direction": "in"}).encode()
        for i in range(n)
    ]


def queue_for_offline_worker(broker: DistrictBroker, payloads: list[bytes]) -> None:
    """The worker subscribes with its persistent session and goes away; the site publishes meanwhile."""
    worker = Peer(broker.port, broker.worker, clean_session=False)
    worker.subscribe(SHARED)
    worker.close()
    site = Peer(broker.port, broker.site, clean_session=True)
    site.publish(payloads)
    site.close()


def worker_back(broker: DistrictBroker, expect: float = float("inf"), settle: float = 2.0) -> Peer:
    """The worker reconnects to the restarted broker; returns it once `expect` messages arrived, or after
    `settle` s with no new one."""
    worker = Peer(broker.port, broker.worker, clean_session=False)
    deadline = time.monotonic() + 20
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline and len(worker.messages) < expect:
        if len(worker.messages) != last:
            last, quiet_since = len(worker.messages), time.monotonic()
        elif time.monotonic() - quiet_since > settle:
            break
        time.sleep(0.05)
    worker.close()
    return worker


@pytest.fixture
def broker(tmp_path):
    b = DistrictBroker(tmp_path).start()
    yield b
    b.stop()


def test_the_generated_config_saves_by_time_every_second(tmp_path):
    text = DistrictBroker(tmp_path).text
    assert all(line in text for line in AUTOSAVE) and AUTOSAVE_INTERVAL == 1
    five = CliRunner().invoke(
        main,
        ["district", "accounts", "--dir", str(tmp_path / "a5"), "--broker-conf", str(tmp_path / "5.conf")]
        + ["--tls-port", "0", "--autosave-interval", "5"],
    )
    assert five.exit_code == 0, five.output
    assert "\nautosave_interval 5\n" in (tmp_path / "5.conf").read_text()
    zero = CliRunner().invoke(
        main, ["district", "accounts", "--dir", str(tmp_path / "a0"), "--autosave-interval", "0"]
    )
    assert zero.exit_code != 0 and "--autosave-interval" in zero.output
    with pytest.raises(ValueError, match="at least 1 second"):
        DistrictAccounts(tmp_path / "a0").broker_config([Listener.local(1883)], autosave_interval=0)


def bridged(broker: DistrictBroker, tmp_path, sent: list[bytes]) -> LocalBroker:
    """A site's Mosquitto with the generated bridge; its events reach the district while the worker is away.
    Returns once the district broker has accepted (and PUBACKed) every one: an observer has seen them all."""
    worker = Peer(broker.port, broker.worker, clean_session=False)
    worker.subscribe(SHARED)
    worker.close()
    observer = Peer(broker.port, broker.observer, clean_session=True)
    observer.subscribe(EVENTS)
    site_broker = LocalBroker(
        tmp_path / "site",
        extra_conf=bridge_config(BridgeSettings("dongsi", "127.0.0.1", broker.port, broker.site[1])),
    ).start()
    counter = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="door-main", protocol=mqtt.MQTTv311)
    counter.connect("127.0.0.1", site_broker.port)
    counter.loop_start()
    for info in [counter.publish(TOPIC, p, qos=1) for p in sent]:
        info.wait_for_publish(10)
    counter.disconnect()
    counter.loop_stop()
    wait_until(lambda: len(observer.messages) == len(sent), 20, message="every event at the district")
    observer.close()
    return site_broker


def bridge_connects(broker: DistrictBroker) -> int:
    return broker.log.read_text().count(f"as {broker.site[0]} (")


def killed_and_back(broker: DistrictBroker) -> Peer:
    """SIGKILL, restart on the same files, the site's bridge back; then the worker's session."""
    connects = bridge_connects(broker)
    broker.kill()
    broker.start()
    wait_until(lambda: bridge_connects(broker) > connects, 20, message="the bridge reconnected")
    return worker_back(broker)  # all there is: until 2 s pass with nothing new


def test_killed_after_the_window_the_broker_delivers_every_bridged_event_on_restart(broker, tmp_path):
    sent = events("bridged", 2000)
    site_broker = bridged(broker, tmp_path, sent)
    try:
        time.sleep(WINDOW)
        worker = killed_and_back(broker)
    finally:
        site_broker.stop()
    assert worker.session_present, "the worker's session, its subscription and its queue survived the kill"
    assert sorted(worker.messages) == sorted(sent), "each exactly once"


def test_without_the_autosave_lines_the_same_kill_loses_the_session_and_its_events(tmp_path):
    """The control: the config as it was, Mosquitto's default of one save every 30 minutes. The site's bridge,
    back after the restart, does not send them again: the district had acknowledged them."""
    broker = DistrictBroker(tmp_path, edit=without_autosave).start()
    try:
        site_broker = bridged(broker, tmp_path, events("bridged", 2000))
        try:
            time.sleep(WINDOW)
            worker = killed_and_back(broker)
        finally:
            site_broker.stop()
        assert worker.session_present is False and worker.messages == []
    finally:
        broker.stop()


def test_a_kill_just_after_a_save_loses_what_arrived_since_it(tmp_path):
    """The window that remains: an event accepted after the last save is gone if the broker dies before the next
    one, 2 s later."""
    # A fresh broker each time the machine was too slow to kill within 0.5 s of a save.
    for attempt in range(3):
        broker = DistrictBroker(tmp_path / f"try{attempt}").start()
        try:
            early, late = events("early", 200), events("late", 50)
            queue_for_offline_worker(broker, early)
            broker.next_save()  # may have begun before the last PUBACK ...
            landed = broker.next_save()  # ... this one began after it: `early` is on disk
            assert 1.5 < broker.next_save() - landed < 3.0, "a save every 2 s"
            site = Peer(broker.port, broker.site, clean_session=True)
            since = broker.next_save()
            site.publish(late)
            broker.kill()
            killed = time.monotonic()
            site.c.loop_stop()
            if killed - since > 0.5:
                continue
            broker.start()
            worker = worker_back(broker, len(early) + len(late))
            assert worker.session_present
            assert sorted(worker.messages) == sorted(early), "the saved events came back, none after the save"
            return
        finally:
            broker.stop()
    pytest.fail("never published and killed within 0.5 s of a save")


@pytest.mark.parametrize("edit", [None, on_changes], ids=["by-time", "on-changes"])
def test_messages_in_flight_to_a_worker_that_has_not_acknowledged_them(tmp_path, edit):
    """A connected worker holds a batch it has not committed (no PUBACK yet) when the broker is killed: the
    broker saved those messages by time and delivers them again; counting changes, it never saved them."""
    broker = DistrictBroker(tmp_path, edit=edit).start()
    try:
        holder = Peer(broker.port, broker.worker, clean_session=False, ack=False)
        holder.subscribe(SHARED)
        sent = events("inflight", 300)
        site = Peer(broker.port, broker.site, clean_session=True)
        site.publish(sent)
        site.close()
        wait_until(lambda: len(holder.messages) == len(sent), 10, message="the batch at the worker")
        time.sleep(WINDOW)
        broker.kill()
        holder.c.loop_stop()
        broker.start()
        worker = worker_back(broker, len(sent))
        assert worker.session_present
        if edit is None:
            assert sorted(worker.messages) == sorted(sent)
        else:
            assert worker.messages == []
    finally:
        broker.stop()


def test_a_clean_stop_saves_everything_it_accepted(broker):
    """SIGTERM (`systemctl stop` or `restart`): Mosquitto saves before it exits, however recent the events."""
    sent = events("stopped", 2000)
    queue_for_offline_worker(broker, sent)
    broker.stop()
    broker.start()
    worker = worker_back(broker, len(sent))
    assert worker.session_present and sorted(worker.messages) == sorted(sent)


def test_each_save_is_fsynced_before_it_replaces_the_file_but_not_its_folder(tmp_path):
    """What a power cut would depend on, seen in the system calls of a save (the cut itself is not tested)."""
    broker = DistrictBroker(tmp_path)
    trace = tmp_path / "strace.txt"
    calls = "trace=openat,fsync,fdatasync,sync,syncfs,rename,renameat,renameat2"
    broker.start((need("strace"), "-f", "-e", calls, "-o", str(trace)))
    try:
        queue_for_offline_worker(broker, events("traced", 100))
        broker.next_save()
        broker.next_save()
    finally:
        broker.stop()
    db, new = f"{broker.data}//mosquitto.db", f"{broker.data}//mosquitto.db.new"
    lines = trace.read_text().splitlines()
    renames = [i for i, line in enumerate(lines) if f'rename("{new}", "{db}") = 0' in line]
    assert len(renames) >= 2
    for end in renames:
        opened = max(
            i for i in range(end) if f'openat(AT_FDCWD, "{new}", O_WRONLY|O_CREAT|O_TRUNC' in lines[i]
        )
        fd = lines[opened].rsplit("= ", 1)[1].split()[0]
        assert any(f"fsync({fd})" in line for line in lines[opened:end]), "fsynced, then renamed"
    assert not any("O_DIRECTORY" in line and str(broker.data) in line for line in lines), "the folder never"
    assert not any(call in line for line in lines for call in ("fdatasync(", " sync(", "syncfs("))
