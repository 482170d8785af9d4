"""Ingest benchmark: throughput against a bare paho subscriber, and live latency to an SSE dashboard stream.

Prints `name: value` lines on stdout only; finishes in well under 60 s. One Mosquitto (LocalBroker, i.e. the shipped
deploy/mosquitto settings) serves every part of one run, so the figures compare like with like.

- `bare_rate`: N valid crossing events (PROTOCOL.md, spread over the site's nine door counters) are queued by the
  broker for two offline persistent sessions of a bare paho subscriber (`bench-bare-1`, `bench-bare-2`,
  clean_session=False, MQTTv311, QoS 1) and, in the same publish, for the ingest's own persistent session
  (`footfall-server-<site>-ingest`). All sessions are primed (subscribe, disconnect) before publishing with nine
  `mosquitto_pub -l -q 1` processes, so the publisher is C and the broker has queued everything before anyone
  reads. A bare subscriber connects and only counts; its rate is N / (time of last message - time of first
  message). It runs once before the ingest and once after (`bare_rate_before`, `bare_rate_after`), and
  `bare_rate` is their mean: the machine is shared, and bracketing the ingest run cancels load that drifts
  during the run (a single bare run a few seconds earlier swung the ratio by 2x on a busy machine).
- `ingest_rate`: the real ingest (`footfall server -c site.toml --only ingest`, a subprocess, as in production)
  connects to its session and drains the same N events. Start-up (interpreter, imports, migrations, connect) is
  excluded by starting the clock at the earliest `received_at` in the store: the ingest stamps each batch with the
  time its worker takes it, which for the first batch is when the first message arrived (ms resolution, wall
  clock, same machine). The clock stops when the bench, subscribed to the retained room states, has seen every
  room's state carry its final entries and exits: that state is published only after the last batch committed
  and was acknowledged, so it is "stored and visible", the full job. The store is then checked for exactly N
  events and no dead letters. `ratio` = ingest_rate / bare_rate (target >= 0.5).
- `sse_p50_ms`, `sse_p99_ms`, `sse_max_ms`: with that ingest still running and the web process started
  (`--only web`, gevent), a plain http.client reader holds GET /api/v1/stream?token=<viewer token> open while a
  paho client publishes one door-main `in` crossing every 10 ms for SSE_SECONDS. Event k raises the hall's
  entries to base + k; its latency is the arrival of the first SSE `room` event for the hall with
  entries_today >= base + k minus the moment just before `publish()` was called (both perf_counter in this
  process). Target p99 < 100 ms.
- `shared_*`: the same N events into district ingest workers on one shared subscription (issue #14): a second
  Mosquitto (same settings), a throwaway PostgreSQL (tests/pg.py), SHARED_WORKERS `footfall district ingest`
  subprocesses whose persistent sessions share `$share/district-ingest/footfall/+/device/+/event`, primed with two
  bare sessions before the same nine-process publish, so the broker splits the N events among the workers'
  sessions and queues all N for each bare one. The baseline is still ONE bare paho subscriber (QoS 1), before and
  after. `shared_ingest_rate` runs from the earliest `received` stamp in PostgreSQL (the first batch taken) to the
  moment a 20 ms poll sees all N rows committed (a commit precedes every acknowledgement); PostgreSQL must then
  hold exactly N events, no dead letters. A round's ratio = its ingest rate / its bare rate; SHARED_ROUNDS rounds
  (3) run on the same broker and PostgreSQL, and `shared_ratio` is the median round's (target >= 0.7), printed
  with that round's rates and every round's ratio (`shared_round_ratios`). With BENCH_SHARED_ROUNDS=0 the
  shared part is skipped and no `shared_*` line is printed.

`BENCH_ONLY=shared` runs only the shared part (no `bare_rate`, `ingest_rate`, `ratio` or `sse_*` lines).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from footfall.clock import format_ts, parse_ts, utcnow  # noqa: E402
from footfall.demo.broker import LocalBroker, free_port, wait_for_port  # noqa: E402
from footfall.site import OUTDOORS, load_site  # noqa: E402

EXAMPLE_SITE = ROOT / "deploy" / "examples" / "site.toml"
N = 20_000
SSE_RATE = 100  # events per second
SSE_SECONDS = 10
TIMEOUT = 20.0
BARE_IDS = ("bench-bare-1", "bench-bare-2")
SHARED_WORKERS = int(os.environ.get("BENCH_SHARED_WORKERS", "2"))
SHARED_ROUNDS = int(os.environ.get("BENCH_SHARED_ROUNDS", "3"))
SHARE = "$share/district-ingest/footfall/+/device/+/event"
ONLY = os.environ.get("BENCH_ONLY", "")


def client(client_id: str, clean: bool) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311
    )


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def make_site(tmp: Path) -> Path:
    text = EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp / "data"}"')
    path = tmp / "site.toml"
    path.write_text(text)
    return path


def crossing(event_id: str, seq: int, direction: str) -> str:
    body = {
        "v": 1,
        "id": event_id,
        "seq": seq,
        "ts": format_ts(utcnow()),
        "type": "crossing",
        "direction": direction,
        "count": 1,
    }
    return json.dumps(body, separators=(",", ":"))


def make_events(site, n: int) -> tuple[dict[str, list[str]], dict[str, tuple[int, int]]]:
    """n crossings round-robin over the counters (mostly `in`, every third `out`) and each room's final
    (entries, exits) as the ingest must count them."""
    counters = [d.id for d in site.devices if d.kind == "counter" and d.id in site.doors_by_device]
    lines: dict[str, list[str]] = {d: [] for d in counters}
    entries: Counter[str] = Counter()
    exits: Counter[str] = Counter()
    for k in range(n):
        device = counters[k % len(counters)]
        seq = len(lines[device])
        direction = "out" if seq % 3 == 2 else "in"
        lines[device].append(crossing(f"{device}-{seq}", seq, direction))
        door = site.doors_by_device[device]
        src, dst = (door.outside, door.inside) if direction == "in" else (door.inside, door.outside)
        if dst != OUTDOORS:
            entries[dst] += 1
        if src != OUTDOORS:
            exits[src] += 1
    return lines, {room.id: (entries[room.id], exits[room.id]) for room in site.rooms}


def prime_session(port: int, client_id: str, topics: list[str]) -> None:
    """Create a persistent session with its subscriptions, then leave: the broker queues for it from now on."""
    c = client(client_id, clean=False)
    done = threading.Event()
    c.on_subscribe = lambda *args: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe([(t, 1) for t in topics])
    if not done.wait(10):
        raise RuntimeError(f"no SUBACK for {client_id}")
    c.disconnect()
    c.loop_stop()


def publish_lines(port: int, site_id: str, lines: dict[str, list[str]]) -> None:
    """One `mosquitto_pub -l -q 1` per device, all at once; each exits after its last PUBACK."""
    tool = shutil.which("mosquitto_pub") or "mosquitto_pub"
    procs = []
    for device, payloads in lines.items():
        topic = f"footfall/{site_id}/device/{device}/event"
        p = subprocess.Popen(
            [tool, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-l"],
            stdin=subprocess.PIPE,
        )
        procs.append((p, "\n".join(payloads) + "\n"))
    writers = [threading.Thread(target=_feed, args=(p, text)) for p, text in procs]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    for p, _ in procs:
        if p.wait(60):
            raise RuntimeError(f"mosquitto_pub exited with {p.returncode}")


def _feed(proc: subprocess.Popen, text: str) -> None:
    proc.stdin.write(text.encode())
    proc.stdin.close()


def bare_rate(port: int, n: int, topics: list[str], client_id: str) -> float:
    times: list[float] = []
    done = threading.Event()

    def on_message(c, userdata, message):
        times.append(time.perf_counter())
        if len(times) == n:
            done.set()

    c = client(client_id, clean=False)
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not done.wait(TIMEOUT):
        raise RuntimeError(f"bare subscriber got {len(times)} of {n} messages")
    c.unsubscribe(topics)  # leave nothing queued for it behind
    c.disconnect()
    c.loop_stop()
    return n / (times[-1] - times[0])


class RoomWatcher:
    """Latest retained room state per room, with the wall-clock time it arrived."""

    def __init__(self, port: int, site_id: str):
        self.states: dict[str, dict] = {}
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.c = client(f"bench-rooms-{os.getpid()}", clean=True)
        self.c.on_message = self._on_message
        self.c.on_connect = lambda c, *a: c.subscribe(f"footfall/{site_id}/room/+/state", 1)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, c, userdata, message) -> None:
        if not message.payload:
            return
        now = time.time()
        state = json.loads(message.payload)
        with self.lock:
            self.states[state["room"]] = state
            self.arrived[state["room"]] = now

    def reached(self, expected: dict[str, tuple[int, int]]) -> float | None:
        """Wall-clock time all rooms showed `expected` (entries, exits), or None if not yet."""
        with self.lock:
            for room, figures in expected.items():
                state = self.states.get(room)
                if state is None or (state["entries_today"], state["exits_today"]) != figures:
                    return None
            return max(self.arrived[room] for room in expected)

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def footfall_proc(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        [sys.executable, "-m", "footfall.cli", *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
    )


def stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ingest_rate(site, db: Path, watcher: RoomWatcher, expected, n: int) -> float:
    end = wait_for(lambda: watcher.reached(expected), TIMEOUT + 10, "the final room states")
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*), min(received_at) FROM events").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    if stored[0] != n or dead:
        raise RuntimeError(f"store holds {stored[0]} events and {dead} dead letters, expected {n} and 0")
    start = parse_ts(stored[1]).timestamp()
    return n / (end - start)


class SseReader(threading.Thread):
    """GET /api/v1/stream with a plain http.client; records (perf_counter, entries_today) of each hall state."""

    def __init__(self, port: int, token: str, room: str):
        super().__init__(daemon=True)
        self.port, self.token, self.room = port, token, room
        self.seen: list[tuple[float, int]] = []
        self.conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.conn.request(
            "GET", f"/api/v1/stream?token={self.token}", headers={"Accept": "text/event-stream"}
        )
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"stream answered {response.status}")
        event = None
        while True:
            try:
                line = response.readline()
            except (OSError, ValueError, http.client.HTTPException):
                return
            if not line:
                return
            now = time.perf_counter()
            if line.startswith(b"event:"):
                event = line[6:].strip().decode()
            elif line.startswith(b"data:") and event == "room":
                state = json.loads(line[5:])
                if state["room"] == self.room:
                    self.seen.append((now, state["entries_today"]))
            elif line in (b"\n", b"\r\n"):
                event = None

    def latest(self) -> int | None:
        return self.seen[-1][1] if self.seen else None

    def close(self) -> None:
        if self.conn is not None and self.conn.sock is not None:
            self.conn.sock.close()


def web_ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def sse_latencies(site_path: Path, site, env: dict[str, str], port: int, base: int) -> list[float]:
    token = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "token", "create", "-c", str(site_path), "--role", "viewer"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    reader = SseReader(port, token, "hall")
    reader.start()
    wait_for(lambda: reader.latest() == base, TIMEOUT, "the stream's snapshot of the hall")
    pub = client(f"bench-sse-pub-{os.getpid()}", clean=True)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port=int(env["FOOTFALL_MQTT_PORT"]))
    pub.loop_start()
    total = SSE_RATE * SSE_SECONDS
    published: list[float] = []
    start = time.perf_counter() + 0.05
    for k in range(total):
        delay = start + k / SSE_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        payload = crossing(f"sse-{k}", N + k, "in")
        published.append(time.perf_counter())
        pub.publish(f"footfall/{site.id}/device/door-main/event", payload, qos=1)
    wait_for(lambda: (reader.latest() or 0) >= base + total, TIMEOUT, "the last event on the stream")
    pub.disconnect()
    pub.loop_stop()
    reader.close()
    seen = list(reader.seen)
    latencies = []
    i = 0
    for k, sent in enumerate(published, start=1):
        while seen[i][1] < base + k:
            i += 1
        latencies.append((seen[i][0] - sent) * 1000)
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def shared_run(tmp: Path, site, lines: dict[str, list[str]], env: dict[str, str]) -> list[dict[str, float]]:
    """SHARED_ROUNDS rounds of N events through SHARED_WORKERS district ingest workers on one `$share/`
    subscription into PostgreSQL, each bracketed by a single bare subscriber on the same broker (see the module
    docstring). The machine is shared: the median round is reported, and every round's ratio with it."""
    import psycopg

    from footfall.server.district import DistrictAccounts, worker_username
    from footfall.server.district_store import DistrictStore
    from tests.pg import PgCluster

    event_topics = [f"footfall/{site.id}/device/+/event"]
    cluster = PgCluster().start()
    workers: list[subprocess.Popen] = []
    rounds = []
    try:
        dsn = cluster.create_database("bench_ingest")
        DistrictStore(dsn).close()  # migrations before the clock runs (the workers find them applied)
        accounts = DistrictAccounts(tmp / "district-accounts")
        accounts.ensure_workers(SHARED_WORKERS)
        with LocalBroker(tmp / "shared-broker") as broker, psycopg.connect(dsn, autocommit=True) as db:
            for r in range(SHARED_ROUNDS):
                db.execute("TRUNCATE events, dead_letters")
                bare_ids = [f"bench-shared-bare-{r}-{k}" for k in (1, 2)]
                for bare_id in bare_ids:
                    prime_session(broker.port, bare_id, event_topics)
                for index in range(1, SHARED_WORKERS + 1):
                    prime_session(broker.port, worker_username(index), [SHARE])
                publish_lines(broker.port, site.id, lines)
                bare_before = bare_rate(broker.port, N, event_topics, bare_ids[0])
                for index in range(1, SHARED_WORKERS + 1):
                    args = ["district", "ingest", "--database", dsn, "--dir", str(accounts.dir),
                            "--worker", str(index), "--port", str(broker.port)]  # fmt: skip
                    workers.append(footfall_proc(args, env, tmp / f"worker-{index}.log"))
                end = _all_stored(db)
                count, first = db.execute("SELECT count(*), min(received) FROM events").fetchone()
                dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
                if count != N or dead:
                    raise RuntimeError(
                        f"PostgreSQL holds {count} events and {dead} dead letters, expected {N}, 0"
                    )
                rate = N / (end - first.timestamp())
                bare_after = bare_rate(broker.port, N, event_topics, bare_ids[1])
                while workers:
                    stop_proc(workers.pop())
                bare = (bare_before + bare_after) / 2
                rounds.append({"before": bare_before, "after": bare_after, "bare": bare, "rate": rate,
                               "ratio": rate / bare})  # fmt: skip
    except Exception:
        for index in range(1, SHARED_WORKERS + 1):
            log = tmp / f"worker-{index}.log"
            if log.exists():
                sys.stderr.write(f"--- worker-{index}.log ---\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        for proc in workers:
            stop_proc(proc)
        cluster.stop()
    return rounds


def _all_stored(db) -> float:
    """The wall-clock time a 20 ms poll first sees all N events committed in PostgreSQL."""
    deadline = time.monotonic() + TIMEOUT + 20
    while db.execute("SELECT count(*) FROM events").fetchone()[0] < N:
        if time.monotonic() > deadline:
            raise RuntimeError("the shared workers did not store every event in time")
        time.sleep(0.02)
    return time.time()


def main() -> None:
    if ONLY not in ("", "shared"):
        raise SystemExit(f"BENCH_ONLY={ONLY!r}: only 'shared' is known")
    if ONLY != "shared":
        single_run()
    if SHARED_ROUNDS > 0:
        print_shared()


def single_run() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        site_path = make_site(tmp)
        site = load_site(site_path)
        db = Path(site.db_path)
        lines, expected = make_events(site, N)
        event_topics = [f"footfall/{site.id}/device/+/event"]
        ingest_id = site.mqtt.client_id or f"footfall-server-{site.id}-ingest"
        with LocalBroker(tmp / "broker") as broker:
            env = {
                **os.environ,
                "FOOTFALL_MQTT_HOST": "127.0.0.1",
                "FOOTFALL_MQTT_PORT": str(broker.port),
                "PYTHONPATH": str(ROOT),
            }
            for bare_id in BARE_IDS:
                prime_session(broker.port, bare_id, event_topics)
            prime_session(broker.port, ingest_id, [*event_topics, f"footfall/{site.id}/device/+/status"])
            publish_lines(broker.port, site.id, lines)
            bare_before = bare_rate(broker.port, N, event_topics, BARE_IDS[0])

            watcher = RoomWatcher(broker.port, site.id)
            ingest = footfall_proc(
                ["server", "-c", str(site_path), "--only", "ingest"], env, tmp / "ingest.log"
            )
            web = None
            try:
                rate = ingest_rate(site, db, watcher, expected, N)
                bare_after = bare_rate(broker.port, N, event_topics, BARE_IDS[1])
                web_port = free_port()
                web_env = {**env, "FOOTFALL_SERVER_LISTEN": f"127.0.0.1:{web_port}"}
                web = footfall_proc(
                    ["server", "-c", str(site_path), "--only", "web"], web_env, tmp / "web.log"
                )
                if not wait_for_port(web_port, TIMEOUT):
                    raise RuntimeError("web did not start")
                wait_for(lambda: web_ready(web_port), TIMEOUT, "web /healthz")
                latencies = sse_latencies(site_path, site, web_env, web_port, expected["hall"][0])
            except Exception:
                for log in ("ingest.log", "web.log"):
                    if (tmp / log).exists():
                        sys.stderr.write(
                            f"--- {log} ---\n{(tmp / log).read_text(errors='replace')[-3000:]}\n"
                        )
                raise
            finally:
                watcher.stop()
                if web is not None:
                    stop_proc(web)
                stop_proc(ingest)
    print(f"events: {N}")
    bare = (bare_before + bare_after) / 2
    print(f"bare_rate_before: {bare_before:.0f}")
    print(f"bare_rate_after: {bare_after:.0f}")
    print(f"bare_rate: {bare:.0f}")
    print(f"ingest_rate: {rate:.0f}")
    print(f"ratio: {rate / bare:.2f}")
    print(f"sse_events: {len(latencies)}")
    print(f"sse_p50_ms: {percentile(latencies, 50):.1f}")
    print(f"sse_p99_ms: {percentile(latencies, 99):.1f}")
    print(f"sse_max_ms: {max(latencies):.1f}")


def print_shared() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        site = load_site(make_site(tmp))
        lines, _ = make_events(site, N)
        shared = shared_run(tmp, site, lines, {**os.environ, "PYTHONPATH": str(ROOT)})
    median = sorted(shared, key=lambda r: r["ratio"])[len(shared) // 2]
    print(f"shared_workers: {SHARED_WORKERS}")
    print(f"shared_rounds: {len(shared)}")
    ratios = ",".join(f"{r['ratio']:.2f}" for r in shared)
    print(f"shared_round_ratios: {ratios}")
    print(f"shared_bare_rate_before: {median['before']:.0f}")
    print(f"shared_bare_rate_after: {median['after']:.0f}")
    print(f"shared_bare_rate: {median['bare']:.0f}")
    print(f"shared_ingest_rate: {median['rate']:.0f}")
    print(f"shared_ratio: {median['ratio']:.2f}")


if __name__ == "__main__":
    main()
