"""A device account takes over ingest's MQTT client id, as the hostile test of #11 did (prints `name: value` lines;
about 40 s).

Mosquitto with deploy/mosquitto/secure.conf's loopback listener, accounts made by `footfall device add`, the real
`footfall server --only ingest`. One door publishes EVENTS crossings at about 100/s (QoS 1, each acknowledged by the
broker) while another door's account connects TAKEOVERS times with ingest's client id and a clean session. Run
twice: with `use_username_as_clientid` removed (the config as it was) and as shipped.

- events: crossings published per run (each PUBACKed by the broker);
- stored_unlocked, lost_unlocked: in the store once ingest has settled, and the rest, on the config as it was;
- stored_locked, lost_locked: the same with the client id locked (0 lost expected);
- ingest_connects_unlocked, ingest_connects_locked: how often ingest had to connect (1: nobody closed it).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
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

from footfall.clock import format_ts, utcnow  # noqa: E402
from footfall.demo.broker import LocalBroker, free_port, wait_for_port  # noqa: E402
from footfall.server.mqtt_accounts import MqttAccounts  # noqa: E402
from footfall.site import load_site  # noqa: E402

EVENTS = 1000
TAKEOVERS = 8
RATE = 100  # events/s: 1,000 events and 8 takeovers in about 10 s, as in the issue
LOCK = "use_username_as_clientid true\n"
SITE = "dongsi"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return subprocess.Popen([sys.executable, "-m", "footfall.cli", *args], env=env, **quiet)


def broker_conf(accounts: MqttAccounts, port: int, locked: bool) -> str:
    """secure.conf's settings and its loopback listener (the TLS one needs certificates, and is locked alike)."""
    text = (ROOT / "deploy" / "mosquitto" / "secure.conf").read_text().split("# 2. MQTT over TLS")[0]
    text = text.replace("/var/lib/footfall/mqtt/passwd", str(accounts.passwd_path))
    text = text.replace("/var/lib/footfall/mqtt/acl", str(accounts.acl_path))
    text = text.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    return text if locked else text.replace(LOCK, "")


def connect(port: int, username: str, password: str, client_id: str, clean: bool) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    client.username_pw_set(username, password)
    up = threading.Event()
    client.on_connect = lambda *_a: up.set()
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    if not up.wait(10):
        raise RuntimeError("no CONNACK")
    return client


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM events WHERE device='door-main'").fetchone()[0]
    except sqlite3.Error:
        return 0


def run(locked: bool) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        site_file = base / "site.toml"
        example = (ROOT / "deploy" / "examples" / "site.toml").read_text()
        site_file.write_text(example.replace('data_dir = "data"', f'data_dir = "{base / "data"}"'))
        for device in ("door-main", "door-book-bar"):
            cli("device", "add", device, "-c", str(site_file), "--broker", "127.0.0.1", "--no-tls").wait()
        accounts = MqttAccounts(load_site(site_file))
        servers, _ = accounts.ensure_servers()
        devices = {}
        for device in ("door-main", "door-book-bar"):
            text = (accounts.configs_dir / f"{device}.toml").read_text()
            devices[device] = [
                re.search(rf'^{k} = "(.+)"$', text, re.M).group(1) for k in ("username", "password")
            ]
        port = free_port()
        broker = LocalBroker(base / "broker", kind="mosquitto", anonymous=False)
        broker.extra_conf = broker_conf(accounts, port, locked)
        broker.start()
        assert wait_for_port(port)
        env = {
            **os.environ,
            "FOOTFALL_MQTT_HOST": "127.0.0.1",
            "FOOTFALL_MQTT_PORT": str(port),
            "FOOTFALL_MQTT_USERNAME": servers["ingest"].username,
            "FOOTFALL_MQTT_PASSWORD": servers["ingest"].password,
            "FOOTFALL_SERVER_INGEST_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        }
        log = base / "ingest.log"
        with log.open("wb") as out:
            ingest = subprocess.Popen(
                [sys.executable, "-m", "footfall.cli", "server", "-c", str(site_file), "--only", "ingest"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            door = connect(port, *devices["door-main"], "door-main", clean=False)
            online = threading.Event()
            door.on_message = lambda _c, _u, m: m.payload == b"online" and online.set()
            door.subscribe(f"footfall/{SITE}/server/status", 1)
            if not online.wait(30):
                raise RuntimeError("ingest did not come online")
            start = time.monotonic()
            for seq in range(EVENTS):
                body = {"v": 1, "id": f"m-{seq}", "seq": seq, "ts": format_ts(utcnow()), "type": "crossing"}
                payload = json.dumps({**body, "direction": "in"}).encode()
                door.publish(f"footfall/{SITE}/device/door-main/event", payload, qos=1).wait_for_publish(10)
                if seq % (EVENTS // TAKEOVERS) == EVENTS // TAKEOVERS // 2:
                    thief = connect(
                        port, *devices["door-book-bar"], f"footfall-server-{SITE}-ingest", clean=True
                    )
                    thief.disconnect()
                    thief.loop_stop()
                time.sleep(max(0.0, start + (seq + 1) / RATE - time.monotonic()))
            db = base / "data" / "footfall.db"
            last, since = -1, time.monotonic()
            while time.monotonic() - since < 5 and stored(db) < EVENTS:  # settled: 5 s without a new event
                now = stored(db)
                if now != last:
                    last, since = now, time.monotonic()
                time.sleep(0.2)
            door.disconnect()
            door.loop_stop()
            return stored(db), len(re.findall(r"connected to 127\.0\.0\.1:\d+ as ", log.read_text()))
        finally:
            ingest.terminate()
            ingest.wait(10)
            broker.stop()


def main() -> None:
    print(f"events: {EVENTS}")
    for name, locked in (("unlocked", False), ("locked", True)):
        kept, connects = run(locked)
        print(f"stored_{name}: {kept}")
        print(f"lost_{name}: {EVENTS - kept}")
        print(f"ingest_connects_{name}: {connects}")


if __name__ == "__main__":
    main()
