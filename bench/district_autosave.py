"""What the district broker's saves cost (prints `name: value` lines; about a minute).

Mosquitto on the config `DistrictAccounts.broker_config` writes (one loopback listener), run alone. An ingest
worker's persistent session subscribes and goes away; a site account publishes QUEUED crossing events at QoS 1 into
its queue, each PUBACKed (a bridge's way).

- queued, db_mb: events queued, and the size of mosquitto.db holding them;
- save_s_min, save_s_max: three saves forced with SIGUSR1 (signal to the rename of mosquitto.db.new over the file):
  Mosquitto rewrites the whole file each time, and handles no client meanwhile;
- rate_autosave, rate_no_autosave, ratio: events/s published (QUEUED / 2 per run) into the queue on the generated
  config (a save every 2 s) and on it without its autosave lines (Mosquitto's default, every 1,800 s), interleaved.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from footfall.demo.broker import free_port, wait_for_port  # noqa: E402
from footfall.server.district import DistrictAccounts, Listener, site_username  # noqa: E402

QUEUED = int(os.environ.get("BENCH_QUEUED", "100000"))
SHARED = "$share/district-ingest/footfall/+/device/+/event"
TOPIC = "footfall/dongsi/device/door-main/event"


class Broker:
    def __init__(self, root: Path, autosave: bool):
        root.mkdir()
        accounts = DistrictAccounts(root / "accounts")
        self.site = (site_username("dongsi"), accounts.add_site("dongsi"))
        self.worker = next(iter(accounts.ensure_workers(1).items()))
        self.port, self.data = free_port(), root / "data"
        self.data.mkdir()
        text = accounts.broker_config([Listener.local(self.port)], self.data)
        if not autosave:
            text = text.replace("autosave_on_changes false\n", "").replace("autosave_interval 1\n", "")
        (root / "m.conf").write_text(text + f"user {getpass.getuser()}\n")
        self.log = open(root / "log", "wb")  # noqa: SIM115 - as long as the process
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(root / "m.conf")], stdout=self.log, stderr=self.log
        )
        assert wait_for_port(self.port), (root / "log").read_text()

    def client(self, creds: tuple[str, str], clean: bool) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds[0], clean_session=clean)
        c.username_pw_set(*creds)
        c.max_inflight_messages_set(1000)
        connected = threading.Event()
        c.on_connect = lambda *_a: connected.set()
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        assert connected.wait(10)
        return c

    def queue(self, n: int) -> float:
        """Events/s of a site publishing n events for the offline worker."""
        worker = self.client(self.worker, clean=False)
        subscribed = threading.Event()
        worker.on_subscribe = lambda *_a: subscribed.set()
        worker.subscribe(SHARED, 1)
        assert subscribed.wait(10)
        worker.disconnect()
        worker.loop_stop()
        site = self.client(self.site, clean=True)
        start = time.monotonic()
        for first in range(0, n, 10_000):  # below the 65,535 message ids paho can have outstanding
            infos = [
                site.publish(TOPIC, json.dumps({"v": 1, "id": f"door-main-{i}", "type": "crossing"}), qos=1)
                for i in range(first, min(n, first + 10_000))
            ]
            for info in infos:
                info.wait_for_publish(60)
        rate = n / (time.monotonic() - start)
        site.disconnect()
        site.loop_stop()
        return rate

    def save(self) -> float:
        db = self.data / "mosquitto.db"
        before = db.stat().st_ino if db.exists() else None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGUSR1)
        while (db.stat().st_ino if db.exists() else None) == before:
            assert time.monotonic() - start < 60, "no save"
            time.sleep(0.001)
        took = time.monotonic() - start
        time.sleep(0.2)  # Mosquitto clears its save flag after the rename: a signal before that would be lost
        return took

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rates = {True: [], False: []}
        for n, autosave in enumerate([False, True, True, False]):  # interleaved: load that drifts hits both
            broker = Broker(Path(tmp) / f"b{n}", autosave)
            rates[autosave].append(broker.queue(QUEUED // 2))
            broker.stop()
        big = Broker(Path(tmp) / "big", autosave=False)  # only the forced saves
        big.queue(QUEUED)
        saves = [big.save() for _ in range(3)]
        db_mb = (big.data / "mosquitto.db").stat().st_size / 1e6
        big.stop()
    rate_on, rate_off = sum(rates[True]) / 2, sum(rates[False]) / 2
    print(f"queued: {QUEUED}")
    print(f"db_mb: {db_mb:.1f}")
    print(f"save_s_min: {min(saves):.3f}")
    print(f"save_s_max: {max(saves):.3f}")
    print(f"rate_autosave: {rate_on:.0f}")
    print(f"rate_no_autosave: {rate_off:.0f}")
    print(f"ratio: {rate_on / rate_off:.2f}")


if __name__ == "__main__":
    main()
