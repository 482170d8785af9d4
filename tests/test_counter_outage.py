"""The beam counter with a real Mosquitto and the real server: crossings made while the broker is down arrive
exactly once when it returns, even when the counter is SIGKILLed in the middle of its replay."""

from __future__ import annotations

import inspect
import sqlite3
import time

import pytest

from footfall.counter.simulate import VisitorModel, expected_counts
from footfall.link import MqttLink
from tests.conftest import footfall_env, wait_server_online, wait_until

pytestmark = pytest.mark.integration

PEOPLE = 500
SEED = 7
OUTAGE_S = 30
# The counter reconnects after at most the link's longest backoff; the replay gets that plus a clear margin.
LONGEST_BACKOFF_S = inspect.signature(MqttLink).parameters["max_delay"].default
REPLAY_WAIT_S = LONGEST_BACKOFF_S + 30


def count(db, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return -1


def write_counter_toml(tmp_path, window: int) -> str:
    path = tmp_path / "counter.toml"
    path.write_text(
        f'[device]\nid = "door-main"\nsite = "dongsi"\nclock = "synced"\ndata_dir = "{tmp_path / "pi"}"\n'
        f"[outbox]\nwindow = {window}\n"
    )
    return str(path)


def test_broker_outage_and_counter_sigkill_mid_replay(broker, site_file, procs, tmp_path):
    truth = expected_counts(VisitorModel(SEED, mean_interval=1.0 / 2.0).edges(PEOPLE))
    crossings = truth.ins + truth.outs
    env = footfall_env(broker)
    server_db = tmp_path / "data" / "footfall.db"
    outbox_db = tmp_path / "pi" / "outbox-door-main.db"
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    wait_server_online(broker)

    broker.stop()
    outage_end = time.monotonic() + OUTAGE_S
    # A small in-flight window makes the replay take long enough to kill the counter in its middle.
    config = write_counter_toml(tmp_path, window=5)
    counter = procs(
        "counter",
        "-c",
        config,
        "--simulate",
        "--fast",
        "--count",
        str(PEOPLE),
        "--seed",
        str(SEED),
        "--rate",
        "2",
        env=env,
        name="counter",
    )
    wait_until(
        lambda: count(outbox_db, "select count(*) from outbox") == crossings,
        30,
        message=f"{crossings} crossings waiting in the outbox",
    )
    wait_until(lambda: time.monotonic() >= outage_end, OUTAGE_S + 5, message="the outage to last 30 s")
    assert count(server_db, "select count(*) from events") == 0

    broker.start()
    # With end-to-end acknowledgement the outbox empties only when the server confirms, so "under way" is the
    # first event stored by the server: the counter is SIGKILLed then, with its outbox still holding events.
    wait_until(
        lambda: count(server_db, "select count(*) from events") > 0,
        REPLAY_WAIT_S,
        interval=0.005,
        message="replay under way",
    )
    counter.kill()
    assert count(outbox_db, "select count(*) from outbox") > 0
    procs("counter", "-c", config, "--simulate", "--count", "0", env=env, name="counter-again")
    wait_until(
        lambda: count(server_db, "select count(*) from events") == crossings,
        60,
        message="every crossing stored",
    )
    wait_until(lambda: count(outbox_db, "select count(*) from outbox") == 0, 30, message="outbox drained")
    with sqlite3.connect(server_db) as conn:
        seqs = [r[0] for r in conn.execute("select seq from events where device='door-main' order by seq")]
        ins = conn.execute("select coalesce(sum(count),0) from events where direction='in'").fetchone()[0]
        outs = conn.execute("select coalesce(sum(count),0) from events where direction='out'").fetchone()[0]
    assert seqs == list(range(1, crossings + 1))
    assert (ins, outs) == (truth.ins, truth.outs)
