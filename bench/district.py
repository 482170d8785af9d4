"""A simulated district on real parts: SITES sites spread over several site Mosquittos (each carrying many sites'
devices, one bridge connection and one district account per site), bridged through cuttable WAN links to one
district Mosquitto, and two district ingest workers on a `$share/` subscription writing to a throwaway
PostgreSQL. Half the traffic is sent while every WAN link is cut; then the links come back and the backlog
replays. Finally a whole day of the district (600,000 events) is rolled up per site and room in PostgreSQL.

Prints `name: value` lines: sites, site_brokers, events, lost, duplicates, replay_events_per_s,
district_day_rollup_s, day_events, worker_rss_mb (each worker).

    python bench/district.py [--sites 500] [--brokers 4] [--per-site 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from footfall import topics  # noqa: E402
from footfall.clock import local_day, utcnow  # noqa: E402
from footfall.demo.broker import LocalBroker, free_port  # noqa: E402
from footfall.messages import Crossing  # noqa: E402
from footfall.server.district import BridgeSettings, DistrictAccounts, Listener, bridge_config  # noqa: E402
from footfall.server.district_store import DistrictStore  # noqa: E402
from footfall.site import load_site  # noqa: E402
from tests.netcut import CuttableLink  # noqa: E402
from tests.pg import PgCluster  # noqa: E402

DAY_EVENTS = 600_000


def site_ids(n: int) -> list[str]:
    return [f"site-{i:03d}" for i in range(n)]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def publish_all(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{port}", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(500)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--brokers", type=int, default=4)
    parser.add_argument("--per-site", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="footfall-district-"))
    example = load_site(ROOT / "deploy" / "examples" / "site.toml")
    devices = [door.device for door in example.doors]
    sites = site_ids(args.sites)

    pg = PgCluster().start()
    dsn = pg.create_database("district")
    store = DistrictStore(dsn)
    for site in sites:  # every site has the example center's doors
        store.add_site(dataclasses.replace(example, id=site))
    accounts = DistrictAccounts(tmp / "accounts")
    passwords = {site: accounts.add_site(site) for site in sites}
    accounts.ensure_workers(2)
    port = free_port()  # the district broker runs its generated config alone: the workers' loopback listener
    conf = accounts.broker_config([Listener.local(port)])
    district = LocalBroker(tmp / "district", port, extra_conf=conf, anonymous=False, listener=False).start()
    wans, site_brokers, carried = [], [], {}
    for b in range(args.brokers):
        wan = CuttableLink(district.port).start()
        mine = sites[b :: args.brokers]
        bridges = "\n".join(
            bridge_config(BridgeSettings(site, "127.0.0.1", wan.port, passwords[site])) for site in mine
        )
        site_brokers.append(LocalBroker(tmp / f"site-broker-{b}", extra_conf=bridges).start())
        wans.append(wan)
        carried[b] = mine
    env_cmd = [sys.executable, "-m", "footfall.cli", "district", "ingest", "--database", dsn]
    workers = [
        subprocess.Popen(
            [*env_cmd, "--dir", str(accounts.dir), "--worker", str(i), "--port", str(district.port)],
            stdout=open(tmp / f"worker-{i}.log", "ab"),  # noqa: SIM115 - lives as long as the worker
            stderr=subprocess.STDOUT,
        )
        for i in (1, 2)
    ]
    time.sleep(3)  # workers connected and subscribed; bridges up

    rng = random.Random(14)
    start = utcnow()
    batches: dict[int, list[list[tuple[str, bytes]]]] = {b: [[], []] for b in carried}
    total = 0
    for b, mine in carried.items():
        for site in mine:
            seqs = dict.fromkeys(devices, 0)
            for n in range(args.per_site):
                device = rng.choice(devices)
                seqs[device] += 1
                event = Crossing(
                    id=f"{device}-{seqs[device]}", seq=seqs[device], ts=start + dt.timedelta(seconds=n),
                    clock="synced", direction=rng.choice(["in", "out"]),
                )  # fmt: skip
                half = 0 if n < args.per_site // 2 else 1
                batches[b][half].append((topics.device_event(site, device), event.encode()))
                total += 1
    for b in carried:
        publish_all(site_brokers[b].port, batches[b][0])
    wait_for(lambda: store.count_events() >= total // 2, 300, "the first half in PostgreSQL")
    for wan in wans:
        wan.cut()
    for b in carried:  # the sites go on counting; their brokers queue the district's share
        publish_all(site_brokers[b].port, batches[b][1])
    time.sleep(2)
    before = store.count_events()
    restored = time.perf_counter()
    for wan in wans:
        wan.restore()
    wait_for(lambda: store.count_events() >= total, 600, "the backlog in PostgreSQL")
    replay_s = time.perf_counter() - restored
    time.sleep(3)  # late repeats would show as extra rows (they cannot: the key refuses them)
    stored = store.count_events()
    duplicates = store.duplicates()
    rss = [psutil.Process(w.pid).memory_info().rss / 2**20 for w in workers]

    # A whole district day: top the stored traffic up to DAY_EVENTS crossings with COPY, then roll it up.
    extra = DAY_EVENTS - stored
    buf = io.StringIO()
    # The sites' local business day that holds the outage traffic (whatever the hour the bench runs at), and
    # the day's extra crossings from 08:30 local time on.
    day = local_day(start, example.timezone, example.day_starts)
    day_start = dt.datetime.combine(day, dt.time(8, 30), tzinfo=example.timezone)
    for n in range(extra):
        site = sites[n % len(sites)]
        device = devices[n % len(devices)]
        ts = (day_start + dt.timedelta(seconds=(n * 7) % 43000)).isoformat()
        buf.write(
            f"{site}\t{device}\tday-{n}\t{10**6 + n}\tcrossing\t{ts}\t{ts}\t{'in' if n % 2 else 'out'}\t1\n"
        )
    buf.seek(0)
    with (
        store.conn.cursor() as cur,
        cur.copy(
            "COPY events (site, device, id, seq, type, ts, received, direction, count) FROM STDIN"
        ) as copy,
    ):
        copy.write(buf.read())
    store.conn.commit()
    store.conn.execute("ANALYZE events")
    store.conn.commit()
    t0 = time.perf_counter()
    rows = store.rollup_day(day)
    rollup_s = time.perf_counter() - t0
    day_events = store.count_events()

    print(f"sites: {len(sites)}")
    print(f"site_brokers: {args.brokers}")
    print(f"events: {total}")
    print(f"lost: {max(0, total - stored)}")
    print(f"duplicates: {duplicates}")
    print(f"replayed_events: {total - before}")
    print(f"replay_events_per_s: {(total - before) / replay_s:.0f}")
    print(f"day_events: {day_events}")
    print(f"district_day_rollup_rows: {rows}")
    print(f"district_day_rollup_s: {rollup_s:.2f}")
    for i, value in enumerate(rss, start=1):
        print(f"worker_{i}_rss_mb: {value:.1f}")

    for w in workers:
        w.terminate()
        w.wait(10)
    store.close()
    for broker in site_brokers:
        broker.stop()
    for wan in wans:
        wan.cut()
    district.stop()
    pg.stop()


if __name__ == "__main__":
    main()
