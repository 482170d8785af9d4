"""A district on real parts: a site's Mosquitto bridged over a WAN link that is cut and restored to a district
Mosquitto, two district ingest workers on one `$share/` subscription writing to a throwaway PostgreSQL, one of
them SIGKILLed mid-stream; and the site's own server counting the same events into its SQLite store."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall import topics
from footfall.clock import local_day, utcnow
from footfall.demo.broker import LocalBroker, free_port
from footfall.messages import Crossing
from footfall.server.district import BridgeSettings, DistrictAccounts, Listener, bridge_config
from footfall.server.district_store import MIGRATIONS, DistrictStore
from footfall.server.reports import compute_day
from footfall.server.store import SqliteStore
from footfall.site import load_site
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.netcut import CuttableLink

pytestmark = pytest.mark.integration
EVENTS = 5000


def district_broker(data_dir, accounts: DistrictAccounts) -> LocalBroker:
    """The district broker on its generated config alone: the ingest listener on the loopback, and no other."""
    port = free_port()
    conf = accounts.broker_config([Listener.local(port)])
    return LocalBroker(data_dir, port=port, listener=False, extra_conf=conf, anonymous=False)


def publisher(port: int, client_id: str = "test-publisher") -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish_with(port: int, username: str, password: str, topic: str) -> None:
    subprocess.run(
        [
            "mosquitto_pub",
            "-p",
            str(port),
            "-u",
            username,
            "-P",
            password,
            "-t",
            topic,
            "-m",
            "{}",
            "-q",
            "1",
        ],
        check=False,
        capture_output=True,
        timeout=10,
    )


def test_a_site_account_cannot_publish_under_another_sites_prefix(tmp_path):
    accounts = DistrictAccounts(tmp_path / "accounts")
    dongsi = accounts.add_site("dongsi")
    accounts.add_site("jiaodaokou")
    worker_password = accounts.ensure_workers(1)["district.ingest.1"]
    with district_broker(tmp_path / "district", accounts) as district:
        seen: list[str] = []
        reader = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="district.ingest.1", protocol=mqtt.MQTTv311
        )
        reader.username_pw_set("district.ingest.1", worker_password)
        reader.on_message = lambda c, u, m: seen.append(m.topic)
        reader.connect("127.0.0.1", district.port)
        reader.subscribe("$share/g/footfall/+/device/+/event", 1)
        reader.loop_start()
        try:
            time.sleep(0.5)
            publish_with(district.port, "site.dongsi", dongsi, "footfall/jiaodaokou/device/door-main/event")
            publish_with(district.port, "site.dongsi", dongsi, "footfall/dongsi/device/door-main/event")
            wait_until(lambda: "footfall/dongsi/device/door-main/event" in seen, 10, message="own prefix")
            time.sleep(0.5)
            assert seen == ["footfall/dongsi/device/door-main/event"]  # the foreign one was refused
        finally:
            reader.loop_stop()
            reader.disconnect()


def test_bridged_site_to_postgres_through_wan_cut_and_worker_kill(tmp_path, site_file, postgres, procs):
    site = load_site(site_file)
    dsn = postgres.create_database("district_e2e")
    accounts = DistrictAccounts(tmp_path / "accounts")
    password = accounts.add_site(site.id)
    accounts.ensure_workers(2)
    district = district_broker(tmp_path / "district", accounts).start()
    wan = CuttableLink(district.port).start()
    site_broker = LocalBroker(
        tmp_path / "site", extra_conf=bridge_config(BridgeSettings(site.id, "127.0.0.1", wan.port, password))
    ).start()
    store = DistrictStore(dsn)
    store.add_site(site)
    env = footfall_env(site_broker)
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="site-ingest")

    def worker(index: int):
        return procs(
            "district", "ingest", "--database", dsn, "--dir", str(accounts.dir), "--worker", str(index),
            "--port", str(district.port), env=env, name=f"district-worker-{index}",
        )  # fmt: skip

    workers = [worker(1), worker(2)]
    wait_server_online(site_broker)  # the site's ingest has subscribed
    for w in workers:  # each worker subscribes as soon as it is connected
        wait_until(lambda w=w: "connected to" in w.output(), 20, message="district worker connected")
    time.sleep(0.5)

    devices = [door.device for door in site.doors]
    seqs = dict.fromkeys(devices, 0)
    rng = random.Random(14)

    def site_count() -> int:
        with sqlite3.connect(site.db_path) as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]

    client = publisher(site_broker.port)
    sent: list[str] = []
    start = utcnow()
    try:
        for n in range(EVENTS):
            device = rng.choice(devices)
            seqs[device] += 1
            event = Crossing(
                id=f"{device}-{seqs[device]}", seq=seqs[device], ts=start + dt.timedelta(milliseconds=n),
                clock="synced", direction=rng.choice(["in", "out"]),
            )  # fmt: skip
            client.publish(topics.device_event(site.id, device), event.encode(), qos=1).wait_for_publish(10)
            sent.append(event.id)
            if n == 1000:
                wan.cut()  # the site keeps counting; its broker queues for the district
                time.sleep(1)
                cut_at = store.count_events(site.id)
            if n == 2500:
                # While cut the district got nothing more, and the site's own server went on counting.
                assert store.count_events(site.id) == cut_at <= 1001
                wait_until(lambda: site_count() > 2000, 30, message="the site counts during the WAN cut")
                wan.restore()
            if n == 3000:
                wait_until(lambda n=cut_at: store.count_events(site.id) > n, 30, message="backlog flowing")
                workers[0].kill()  # SIGKILL mid-backlog, with whatever it had not acknowledged
        workers[0] = worker(1)  # systemd would restart it; its session holds what it had not acknowledged
    finally:
        client.loop_stop()
        client.disconnect()

    wait_until(lambda: store.count_events(site.id) >= EVENTS, 120, 0.5, message="all events in PostgreSQL")
    time.sleep(2)  # anything late would be a duplicate: the key would refuse it, the count shows it
    stored = {r[0] for r in store.conn.execute("SELECT id FROM events WHERE site = %s", (site.id,))}
    assert store.count_events(site.id) == EVENTS and stored == set(sent)
    assert store.duplicates() == 0

    # The site's own SQLite store counted the same events, and both roll the day up to the same room counts.
    wait_until(lambda: site_count() >= EVENTS, 60, message="all events in the site's store")
    conn = sqlite3.connect(site.db_path)
    per_device_site = dict(conn.execute("SELECT device, count(*) FROM events GROUP BY device").fetchall())
    per_device_district = dict(
        store.conn.execute("SELECT device, count(*) FROM events WHERE site = %s GROUP BY device", (site.id,))
    )
    assert per_device_site == per_device_district
    day = local_day(start, site.timezone, site.day_starts)
    store.rollup_day(day)
    site_rooms = compute_day(site, SqliteStore(site.db_path), day).rooms
    district_rooms = store.daily_rooms(site.id, day)
    assert district_rooms and all(
        district_rooms.get(room, {"entries": 0})["entries"] == r.entries for room, r in site_rooms.items()
    )
    for w in workers:
        w.stop()
    store.close()
    site_broker.stop()
    wan.cut()
    district.stop()


def test_district_commands_make_accounts_bridge_file_and_rollup(tmp_path, site_file, postgres):
    from click.testing import CliRunner

    from footfall.cli import main

    dsn = postgres.create_database("district_cli")
    acc, out, conf = tmp_path / "acc", tmp_path / "bridge.conf", tmp_path / "district.conf"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "district",
            "accounts",
            "--dir",
            str(acc),
            "--workers",
            "2",
            "--broker-conf",
            str(conf),
            "--tls-port",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "use_username_as_clientid true" in conf.read_text() and "allow_anonymous false" in conf.read_text()
    args = ["district", "add-site", "--dir", str(acc), "-c", str(site_file), "--district-host", "d.example.org",
            "--out", str(out), "--database", dsn, "--cafile", "/etc/ca.crt"]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600  # it holds the site's district password
    assert (
        "address d.example.org:8883" in text
        and "cleansession false" in text
        and "bridge_cafile /etc/ca.crt" in text
    )
    queued = int(
        next(line.split()[1] for line in text.splitlines() if line.startswith("max_queued_messages"))
    )
    assert queued >= 200_000
    acl = (acc / "acl").read_text()
    assert "user site.dongsi\ntopic write footfall/dongsi/#" in acl
    store = DistrictStore(dsn)
    assert store.conn.execute("SELECT count(*) FROM doors WHERE site = 'dongsi'").fetchone()[0] == len(
        load_site(site_file).doors
    )
    DistrictStore(dsn).close()  # a second worker starting applies nothing twice
    assert store.conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    result = runner.invoke(main, ["district", "rollup", "--database", dsn, "--date", "2026-12-01"])
    assert result.exit_code == 0 and "site-room rows for 2026-12-01" in result.output, result.output
    result = runner.invoke(main, ["district", "rollup", "--database", dsn, "--date", "yesterday"])
    assert result.exit_code != 0 and "YYYY-MM-DD" in result.output
    store.close()
