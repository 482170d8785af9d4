"""Break-beam counter benchmark (prints `name: value` lines; under 60 s).

- crossings_per_s: people driven through gpiozero MockFactory pins (real gpiozero callbacks, the real detector on
  a simulated clock, the durable outbox with fsync, paho QoS 1) until every crossing is confirmed end to end and
  deleted from the outbox (a stand-in server confirms what it receives every 20 ms, as ingest does per batch).
- bare_publish_per_s: the same number of QoS 1 publishes from a bare paho client with the same in-flight window on
  the same broker, no outbox (the baseline; `ratio` = crossings_per_s / bare_publish_per_s).
- peak_rss_mb: peak resident memory of a `footfall counter --simulate --fast` process that counts the same people
  and replays them (ru_maxrss of the child), and python_rss_mb: a bare interpreter importing paho and gpiozero.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from footfall.counter.app import CounterApp  # noqa: E402
from footfall.counter.config import CounterConfig, counter_config_from_dict  # noqa: E402
from footfall.counter.run import SimClock  # noqa: E402
from footfall.counter.simulate import VisitorModel, drive_pins, expected_counts  # noqa: E402
from footfall.demo.broker import LocalBroker  # noqa: E402
from footfall.server.acks import ack_payload, seq_ranges  # noqa: E402

PEOPLE = 3000


def counter_config(tmp: Path, port: int) -> CounterConfig:
    raw = {
        "device": {"id": "door-main", "site": "dongsi", "clock": "synced", "data_dir": str(tmp)},
        "mqtt": {"host": "127.0.0.1", "port": port},
    }
    return counter_config_from_dict(raw, "<bench>")


def crossings_per_s(tmp: Path, port: int) -> tuple[float, int]:
    edges = VisitorModel(11, mean_interval=0.5, abort_rate=0.0).edges(PEOPLE)
    truth = expected_counts(edges)
    clock = SimClock()
    factory = MockFactory()
    app = CounterApp(counter_config(tmp, port), pin_factory=factory, clock=clock).start()
    app.runtime.link.wait_connected(10)
    start = time.perf_counter()
    drive_pins(factory.pin(17), factory.pin(27), edges, on_time=clock.set)
    clock.set(edges[-1][0] + 5)
    app.sensors.tick()
    total = truth.ins + truth.outs
    while app.runtime.outbox.queue or app.runtime.outbox.last_seq < total - 1:
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    app.stop()
    return total / elapsed, total


def bare_publish_per_s(port: int, n: int, window: int = 1000) -> float:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(window)
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = b'{"v":1,"id":"01JDX3K4ZQ7V8M2N5P6R9S0T1U","seq":1,"ts":"2026-11-28T01:30:12.345Z","type":"crossing","direction":"in","count":1}'
    start = time.perf_counter()
    infos = [client.publish("footfall/dongsi/device/bench/event", payload, qos=1) for _ in range(n)]
    for info in infos:
        info.wait_for_publish(30)
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return n / elapsed


def child_peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory of one child process, sampled every 10 ms, in MB.

    (ru_maxrss of a child also counts the parent's pages it had between fork and exec, so it is not used.)
    """
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    if proc.wait(60):
        raise RuntimeError(f"{args[:3]} exited with {proc.returncode}")
    return peak / 2**20


def counter_process_rss_mb(tmp: Path, port: int) -> float:
    """Run a simulated counter that counts PEOPLE and exits once its outbox is empty."""
    config = tmp / "counter.toml"
    config.write_text(
        f'[device]\nid = "door-main"\nsite = "dongsi"\nclock = "synced"\ndata_dir = "{tmp / "rss"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    script = (
        "import sys, threading, time\n"
        "from footfall.counter.config import load_counter_config\n"
        "from footfall.counter import run\n"
        "from gpiozero.pins.mock import MockFactory\n"
        "from footfall.counter.app import CounterApp\n"
        f"config = load_counter_config({str(config)!r})\n"
        "clock = run.SimClock(); factory = MockFactory()\n"
        "app = CounterApp(config, pin_factory=factory, clock=clock).start()\n"
        f"run.simulate_visitors(app, factory, threading.Event(), 2.0, {PEOPLE}, 11, clock)\n"
        "while app.runtime.outbox.queue: time.sleep(0.01)\n"
        "app.stop()\n"
    )
    return child_peak_rss_mb([sys.executable, "-c", script])


def announce_server(port: int) -> mqtt.Client:
    """Counters hold events until they see the server's retained status, and delete them only when the server
    confirms them: stand in for the server (status, then an ack of what arrived every 20 ms)."""
    received: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def on_message(_c, _u, message) -> None:
        body = json.loads(message.payload)
        with lock:
            received.append((message.topic.split("/")[3], body["seq"], body["id"]))

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-server", protocol=mqtt.MQTTv311)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe("footfall/dongsi/device/+/event", 1)
    client.publish("footfall/dongsi/server/status", b"online", qos=1, retain=True).wait_for_publish(10)

    def confirm() -> None:
        while client.is_connected():
            time.sleep(0.02)
            with lock:
                batch, received[:] = list(received), []
            by_device: dict[str, list[tuple[int, str]]] = {}
            for device, seq, event_id in batch:
                by_device.setdefault(device, []).append((seq, event_id))
            for device, events in by_device.items():
                client.publish(f"footfall/dongsi/device/{device}/ack", ack_payload(seq_ranges(events)), qos=1)

    threading.Thread(target=confirm, daemon=True).start()
    return client


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with LocalBroker(tmp / "broker") as broker:
            server = announce_server(broker.port)
            rate, total = crossings_per_s(tmp / "a", broker.port)
            bare = bare_publish_per_s(broker.port, total)
            rss = counter_process_rss_mb(tmp, broker.port)
            base = child_peak_rss_mb([sys.executable, "-c", "import paho.mqtt.client, gpiozero, sqlite3"])
            server.loop_stop()
            server.disconnect()
    print(f"crossings: {total}")
    print(f"crossings_per_s: {rate:.0f}")
    print(f"bare_publish_per_s: {bare:.0f}")
    print(f"ratio: {rate / bare:.2f}")
    print(f"peak_rss_mb: {rss:.1f}")
    print(f"python_rss_mb: {base:.1f}")


if __name__ == "__main__":
    main()
