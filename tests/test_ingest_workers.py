"""A single large site's ingest past one core (#14): `[server] ingest_workers` = N processes on one shared
subscription, on the PostgreSQL store. Worker 1 counts every crossing any of them stored (read back in row id
order under the store's write lock); any worker can be killed and nothing is lost, stored twice or miscounted.
docs/operations.md, "Ingest workers"."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import psycopg
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from footfall.cli import main
from footfall.clock import format_ts, utcnow
from footfall.errors import ConfigError
from footfall.server.health import read_heartbeat
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.occupancy import replay
from footfall.server.rooms import today
from footfall.server.store import open_store
from footfall.site import load_site
from tests.conftest import footfall_env, wait_server_online, wait_until

COUNTERS = ("door-main", "door-book-bar", "door-classroom", "door-counselling")


def with_workers(site_file, n: int, url: str | None = None):
    text = site_file.read_text().replace("[server]\n", f"[server]\ningest_workers = {n}\n", 1)
    if url:
        text = text.replace("[server]\n", f'[server]\ndatabase = "{url}"\n', 1)
    site_file.write_text(text)
    return site_file


def crossing(device: str, n: int, ts: dt.datetime, direction: str) -> tuple[str, bytes]:
    body = {"v": 1, "id": f"{device}-{n}", "seq": n + 1, "ts": format_ts(ts), "type": "crossing"}
    return f"footfall/dongsi/device/{device}/event", json.dumps({**body, "direction": direction}).encode()


def day_of_crossings(site, count: int, seed: int) -> list[tuple[str, bytes]]:
    """`count` crossings over four counters (the main door and three room doors) in event-time order, about a
    third of them out."""
    rng = random.Random(seed)
    start = utcnow() - dt.timedelta(minutes=3)
    if today(site, start) != today(site, utcnow()):
        start = utcnow()
    seq = dict.fromkeys(COUNTERS, 0)
    out = []
    for k in range(count):
        device = rng.choice(COUNTERS)
        direction = rng.choice(["in", "in", "out"])
        out.append(crossing(device, seq[device], start + dt.timedelta(milliseconds=7 * k), direction))
        seq[device] += 1
    return out


def expected_rooms(site, store) -> dict:
    day = today(site, utcnow())
    with store.transaction() as tx:
        rows = tx.day_crossing_rows(day)
    return replay([tuple(r) for r in rows], site.doors_by_device, day)


def test_worker_1_counts_what_every_worker_stored(postgres, site_file):
    """Two Ingestors on one PostgreSQL store, as two worker processes would be: events shared out between them
    in shuffled batches (a door's backlog arriving late included); worker 1's live counts equal the replay of
    everything stored."""
    site = load_site(with_workers(site_file, 2, postgres.create_database("shared_counting")))
    first_store, second_store = open_store(site), open_store(site)
    first, second = Ingestor(site, first_store, "stored"), Ingestor(site, second_store, "none")
    events = day_of_crossings(site, 600, seed=1)
    late = events[100:160]  # a door offline for a while: its events come last
    arrival = events[:100] + events[160:] + late
    rng = random.Random(2)
    now = utcnow()
    for start in range(0, len(arrival), 40):
        batch = [Incoming(t, p) for t, p in arrival[start : start + 40]]
        (first if rng.random() < 0.5 else second).process(batch, now)
        if rng.random() < 0.3:
            first.count_stored(now)
        if start == 280:  # a `republish-room` (after a staff correction) reads the hall whole, mid-stream
            with first_store.transaction() as tx:
                tx.put_room_counts("hall", first.recount_room(tx, "hall", today(site, now)), now)
    first.count_stored(now)
    want = expected_rooms(site, first_store)
    live = first_store.rooms_live()
    assert second.stored > 100 and first.stored > 100  # both took a share
    assert first.stored + second.stored == len(events)  # no dead letters: every event a counted crossing
    for room, counts in want.items():
        got = live[room]
        assert (got.entries, got.exits, got.occupancy, got.peak, got.corrected) == (
            counts.entries, counts.exits, counts.occupancy, counts.peak, counts.corrected,
        ), room  # fmt: skip
    first_store.close()
    second_store.close()


def test_worker_1_counts_its_very_first_batch(postgres, site_file):
    site = load_site(with_workers(site_file, 2, postgres.create_database("first_batch")))
    store = open_store(site)
    events = [e for e in day_of_crossings(site, 200, seed=5) if "/door-main/" in e[0]]
    changed = Ingestor(site, store, "stored").process([Incoming(t, p) for t, p in events], utcnow())
    hall = replay_counts = expected_rooms(site, store)["hall"]
    assert store.rooms_live()["hall"].entries == replay_counts.entries > 0
    assert {s["room"]: s["entries_today"] for s in changed}["hall"] == hall.entries  # and it is published
    store.close()


def test_more_than_one_worker_needs_postgresql(site_file):
    with pytest.raises(ConfigError) as error:
        load_site(with_workers(site_file, 2))
    assert "server.ingest_workers" in str(error.value) and "PostgreSQL" in str(error.value)


def test_worker_option_goes_with_ingest_worker(site_file):
    result = CliRunner().invoke(main, ["server", "-c", str(site_file), "--only", "ingest", "--worker", "2"])
    assert result.exit_code == 2 and "--worker K goes with --only ingest-worker" in result.output


class RoomStates:
    """The retained room states, as a dashboard sees them."""

    def __init__(self, port: int):
        self.latest: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("footfall/dongsi/room/+/state", 1)
        self.client.loop_start()

        self.confirmed: dict[str, set[int]] = {}  # device -> seqs ingest told it are stored

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            body = json.loads(message.payload)
            if message.topic.endswith("/ack"):
                seqs = self.confirmed.setdefault(message.topic.split("/")[3], set())
                for first, last, _id in body["ranges"]:
                    seqs.update(range(first, last + 1))
            else:
                self.latest[body["room"]] = body

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in messages:
        by_topic.setdefault(topic, []).append(payload)
    for topic, payloads in by_topic.items():  # one ordered stream per door, as its outbox sends them
        subprocess.run(
            [shutil.which("mosquitto_pub") or "mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
             "-t", topic, "-l"],
            input=b"\n".join(payloads) + b"\n", check=True, timeout=60,
        )  # fmt: skip


@pytest.mark.integration
def test_two_worker_processes_one_killed_nothing_lost_or_miscounted(
    postgres, broker, site_file, procs, tmp_path
):
    url = postgres.create_database("workers")
    site = load_site(with_workers(site_file, 2, url))
    env = footfall_env(broker)
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    wait_server_online(broker)
    data = site.data_dir

    def worker_2():
        beat = read_heartbeat(data, 2)
        return beat if beat and not beat["problems"] else None

    wait_until(worker_2, 30, message="ingest worker 2 running and connected")
    states = RoomStates(broker.port)
    states.client.subscribe("footfall/dongsi/device/+/ack", 1)
    try:
        events = day_of_crossings(site, 3000, seed=3)
        publish(broker.port, events[:1500])
        wait_until(
            lambda: (read_heartbeat(data, 2) or {}).get("events", 0) > 0, 20, message="worker 2 stores"
        )
        killed = worker_2()["pid"]
        os.kill(killed, signal.SIGKILL)  # mid-stream: its unacknowledged share waits in its session
        publish(broker.port, events[1500:])
        wait_until(
            lambda: "ingest worker 2: restarted" in " ".join(read_heartbeat(data)["problems"]),
            20, message="worker 1's heartbeat tells of the restart",
        )  # fmt: skip

        def stored() -> int:
            with psycopg.connect(url) as conn:
                return conn.execute("SELECT count(*) FROM events").fetchone()[0]

        wait_until(lambda: stored() == 3000, 60, message="all 3,000 events stored")
        store = open_store(site)
        want = expected_rooms(site, store)

        def published_right():
            with states.lock:
                return all(
                    states.latest.get(room, {}).get("entries_today") == counts.entries
                    and states.latest[room]["occupancy"] == counts.occupancy
                    for room, counts in want.items()
                )

        wait_until(published_right, 20, message="retained room states count every worker's events")
        live = store.rooms_live()
        for room, counts in want.items():
            assert (live[room].entries, live[room].exits, live[room].peak) == (
                counts.entries, counts.exits, counts.peak,
            ), room  # fmt: skip
        sent: dict[str, set[int]] = {}
        for topic, payload in events:
            sent.setdefault(topic.split("/")[3], set()).add(json.loads(payload)["seq"])
        # Each worker confirmed its share to the devices: every event, so each door empties its outbox.
        wait_until(lambda: states.confirmed == sent, 20, message="every event confirmed to its device")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(DISTINCT (device, id)) FROM events").fetchone()[0] == 3000
            assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0

        # The restarted worker took its share again (its beat, every 2 s, tells).
        def restarted_and_storing():
            beat = read_heartbeat(data, 2) or {}
            return beat.get("pid") != killed and beat.get("events", 0) > 0

        wait_until(restarted_and_storing, 10, message="worker 2 back and storing")
        store.close()
    finally:
        states.stop()


@pytest.mark.integration
def test_on_the_secure_broker_each_worker_logs_in_as_its_own_account(postgres, tmp_path, site_file, procs):
    """On the shipped secure broker a client id is its user name: worker 2 has its own account (made by
    server.mqtt_accounts from ingest's), so the two workers never close each other's connection."""
    from tests.test_mqtt_client_ids import Client, Secure, connections
    from tests.test_mqtt_client_ids import crossing as main_crossing

    url = postgres.create_database("secure_workers")
    with_workers(site_file, 2, url)
    secure = Secure(tmp_path, site_file)  # `footfall device add` makes the accounts, the workers' included
    try:
        passwd = (tmp_path / "data" / "mqtt" / "passwd").read_text()
        assert "server.dongsi.ingest:" in passwd and "server.dongsi.ingest-2:" in passwd
        ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=secure.env(), name="ingest")
        data = tmp_path / "data"
        wait_until(
            lambda: all((read_heartbeat(data, k) or {"problems": [1]})["problems"] == [] for k in (1, 2)),
            30, message="both workers connected",
        )  # fmt: skip
        door = Client(secure.plain, secure.device["door-main"], "door-main", clean_session=False)
        for seq in range(400):
            door.c.publish(
                "footfall/dongsi/device/door-main/event", main_crossing(seq), qos=1
            ).wait_for_publish(10)
        door.close()

        def stored() -> int:
            with psycopg.connect(url) as conn:
                return conn.execute("SELECT count(*) FROM events").fetchone()[0]

        wait_until(lambda: stored() == 400, 30, message="all 400 events stored")
        wait_until(
            lambda: (read_heartbeat(data, 2) or {}).get("events", 0) > 0, 10, message="worker 2's share"
        )
        broker_log = (tmp_path / "broker" / "mosquitto.log").read_text(errors="replace")
        assert "as server.dongsi.ingest-2 (" in broker_log and "closing old connection" not in broker_log
        assert connections(ingest.output(), secure.plain) == 2, ingest.output()[-2000:]  # one each, kept
    finally:
        secure.stop()


def test_worker_1_takes_what_the_site_ingest_takes_the_others_only_events(postgres, site_file):
    from footfall.server.ingest_service import IngestService

    site = load_site(with_workers(site_file, 3, postgres.create_database("roles")))
    store = open_store(site)
    first, third = IngestService(site, store, worker=1), IngestService(site, store, worker=3)
    share = ("$share/footfall-ingest/footfall/dongsi/device/+/event", 1)
    assert third.link.subscriptions == [share] and third.ingestor.counting == "none"
    assert first.link.subscriptions[0] == share and first.ingestor.counting == "stored"
    assert ("footfall/dongsi/device/+/status", 1) in first.link.subscriptions
    assert ("footfall/dongsi/server/cmd", 1) in first.link.subscriptions
    assert (first.link.client_id, third.link.client_id) == (
        "footfall-server-dongsi-ingest",
        "footfall-server-dongsi-ingest-3",
    )
    store.close()


@pytest.mark.integration
def test_going_from_one_ingest_to_two_workers_delivers_each_event_once(postgres, broker, site_file, procs):
    """A persistent session keeps its subscriptions: worker 1 drops its old plain one when it starts sharing, or
    it would get every event twice (once plain, once when the share picks it)."""
    url = postgres.create_database("upgrade")
    text = site_file.read_text()
    site_file.write_text(text.replace("[server]\n", f'[server]\ndatabase = "{url}"\n', 1))
    env = footfall_env(broker)
    one = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="one")
    wait_server_online(broker)
    one.stop()
    site = load_site(with_workers(site_file, 2, None))
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="two")
    data = site.data_dir
    wait_until(
        lambda: all((read_heartbeat(data, k) or {"problems": [1]})["problems"] == [] for k in (1, 2)),
        30, message="both workers connected",
    )  # fmt: skip
    events = day_of_crossings(site, 400, seed=4)
    publish(broker.port, events)

    def counted(name: str) -> int:
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT value FROM metrics WHERE name=%s", (name,)).fetchone()
            return found[0] if found else 0

    wait_until(lambda: counted("events") == 400, 30, message="400 events stored")
    time.sleep(1.0)  # a second copy would be on its way by now
    assert counted("duplicates") == 0
    worker_2 = read_heartbeat(data, 2)["pid"]
    os.kill(read_heartbeat(data)["pid"], signal.SIGKILL)  # worker 1 dies: the others die with it

    def gone() -> bool:
        try:
            os.kill(worker_2, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(gone, 10, message="worker 2 ended with worker 1")


def test_raising_ingest_workers_writes_the_workers_accounts(postgres, site_file):
    """The workers' broker accounts are derived from ingest's: changing `ingest_workers` rewrites the files."""
    from footfall.server.mqtt_accounts import MqttAccounts

    url = postgres.create_database("accounts")
    accounts = MqttAccounts(load_site(site_file))
    servers, created = accounts.ensure_servers()
    assert created and "ingest-2" not in accounts.passwd_path.read_text()
    again = MqttAccounts(load_site(with_workers(site_file, 3, url)))
    same, created = again.ensure_servers()
    assert not created and again.rewrote and same == servers  # ingest's and the web's own accounts unchanged
    passwd, acl = again.passwd_path.read_text(), again.acl_path.read_text()
    ingest_hash = next(
        line for line in passwd.splitlines() if line.startswith("server.dongsi.ingest:")
    ).split(":", 1)[1]
    for k in (2, 3):
        assert f"server.dongsi.ingest-{k}:{ingest_hash}" in passwd  # ingest's password
        assert f"user server.dongsi.ingest-{k}\ntopic read footfall/dongsi/device/+/event" in acl
    unchanged = MqttAccounts(load_site(site_file))
    unchanged.ensure_servers()
    assert not unchanged.rewrote  # nothing new: the broker's files are left alone


def test_events_are_decoded_before_the_write_lock(postgres, site_file, monkeypatch):
    """Workers decode and validate in parallel: only storing holds the store's write lock (its transaction)."""
    import contextlib

    site = load_site(with_workers(site_file, 2, postgres.create_database("early")))
    store = open_store(site)
    ingestor = Ingestor(site, store, "none")
    depth = {"in": 0}
    real_transaction, real_event = store.transaction, ingestor._event

    @contextlib.contextmanager
    def transaction():
        depth["in"] += 1
        try:
            with real_transaction() as tx:
                yield tx
        finally:
            depth["in"] -= 1

    seen: list[int] = []

    def event(*args):
        seen.append(depth["in"])
        return real_event(*args)

    monkeypatch.setattr(store, "transaction", transaction)
    monkeypatch.setattr(ingestor, "_event", event)
    events = day_of_crossings(site, 50, seed=6)
    ingestor.process([Incoming(t, p) for t, p in events], utcnow())
    assert seen == [0] * 50 and ingestor.stored == 50
    store.close()
