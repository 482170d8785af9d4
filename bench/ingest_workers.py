"""Ingest workers of one large site (`[server] ingest_workers`, issue #14): the same N events into the site's ingest
on the PostgreSQL store, with 1 worker and with 2 on one shared subscription, each against a bare paho subscriber
(QoS 1) in the same run.

Prints `name: value` lines. One Mosquitto and one throwaway PostgreSQL (tests/pg.py) serve the run. For each
worker count W: ingest starts once so its workers' persistent sessions subscribe, and stops; N crossings (nine
`mosquitto_pub -l -q 1`, as in bench/ingest.py) are queued by the broker for those sessions, shared out among the W,
and for two bare sessions; a bare subscriber drains one (`workers_W_bare_before`), ingest starts again and drains
its sessions, a bare subscriber drains the other (`workers_W_bare_after`). `workers_W_rate` runs from the earliest
`received_at` in PostgreSQL (the first batch taken) to the arrival of the retained room states carrying every
room's final entries and exits: stored, counted by worker 1 and published, the full job. PostgreSQL must then hold
exactly N events. `workers_W_ratio` = rate / the mean of its two bare rates; `speedup` = workers_2_ratio /
workers_1_ratio (the machine is shared: each rate is compared with a bare rate measured beside it).

    python bench/ingest_workers.py [--events 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from ingest import (  # noqa: E402
    RoomWatcher,
    bare_rate,
    footfall_proc,
    make_events,
    prime_session,
    publish_lines,
    stop_proc,
    wait_for,
)

from footfall.clock import parse_ts  # noqa: E402
from footfall.demo.broker import LocalBroker  # noqa: E402
from footfall.server.health import read_heartbeat  # noqa: E402
from footfall.site import load_site  # noqa: E402
from tests.pg import PgCluster  # noqa: E402

EXAMPLE_SITE = ROOT / "deploy" / "examples" / "site.toml"
TIMEOUT = 60.0


def site_file(tmp: Path, workers: int, url: str) -> Path:
    text = EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp / "data"}"')
    text = text.replace("[server]\n", f'[server]\ningest_workers = {workers}\ndatabase = "{url}"\n', 1)
    path = tmp / "site.toml"
    path.write_text(text)
    return path


def workers_up(data: Path, workers: int) -> bool:
    beats = [read_heartbeat(data, k) for k in range(1, workers + 1)]
    return all(beat is not None and not beat["problems"] for beat in beats)


def run(workers: int, n: int, broker: LocalBroker, cluster: PgCluster, root: Path) -> dict[str, float]:
    tmp = root / f"w{workers}"
    tmp.mkdir()
    url = cluster.create_database(f"bench_w{workers}")
    path = site_file(tmp, workers, url)
    site = load_site(path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FOOTFALL_MQTT_PORT": str(broker.port)}
    events_topic = f"footfall/{site.id}/device/+/event"
    bare_ids = [f"bench-workers-{workers}-bare-{k}" for k in (1, 2)]
    for bare in bare_ids:
        prime_session(broker.port, bare, [events_topic])
    proc = footfall_proc(["server", "-c", str(path), "--only", "ingest"], env, tmp / "ingest.log")
    wait_for(lambda: workers_up(site.data_dir, workers), TIMEOUT, "the ingest workers to connect")
    stop_proc(proc)  # the sessions stay, subscribed: the broker queues for them from now on
    lines, expected = make_events(site, n)
    publish_lines(broker.port, site.id, lines)
    before = bare_rate(broker.port, n, [events_topic], bare_ids[0])
    watcher = RoomWatcher(broker.port, site.id)
    proc = footfall_proc(["server", "-c", str(path), "--only", "ingest"], env, tmp / "ingest.log")
    try:
        end = wait_for(lambda: watcher.reached(expected), TIMEOUT, "the final room states")
    finally:
        stop_proc(proc)
        watcher.stop()
    with psycopg.connect(url) as conn:
        stored, first = conn.execute("SELECT count(*), min(received_at) FROM events").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    if stored != n or dead:
        raise SystemExit(f"PostgreSQL holds {stored} events and {dead} dead letters, expected {n} and 0")
    rate = n / (end - parse_ts(first).timestamp())
    after = bare_rate(broker.port, n, [events_topic], bare_ids[1])
    bare = (before + after) / 2
    return {"rate": rate, "before": before, "after": after, "ratio": rate / bare}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        cluster = PgCluster().start()
        try:
            with LocalBroker(root / "broker") as broker:
                results = {w: run(w, args.events, broker, cluster, root) for w in (1, 2)}
        finally:
            cluster.stop()
    print(f"events: {args.events}")
    for workers, r in results.items():
        print(f"workers_{workers}_bare_before: {r['before']:.0f}")
        print(f"workers_{workers}_bare_after: {r['after']:.0f}")
        print(f"workers_{workers}_rate: {r['rate']:.0f}")
        print(f"workers_{workers}_ratio: {r['ratio']:.2f}")
    print(f"speedup: {results[2]['ratio'] / results[1]['ratio']:.2f}")


if __name__ == "__main__":
    start = time.monotonic()
    main()
    print(f"bench_s: {time.monotonic() - start:.0f}")
