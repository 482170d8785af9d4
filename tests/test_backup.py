"""`footfall backup` while events flow through a real Mosquitto into ingest, and `footfall restore`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from footfall.cli import main
from footfall.clock import format_ts, utcnow
from footfall.server.ingest_service import IngestService
from footfall.server.store import SqliteStore
from footfall.site import load_site
from tests.conftest import EXAMPLE_SITE, wait_until

pytestmark = pytest.mark.integration


def write_site(tmp_path, name: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path / name}"'))
    return path


def tables(db) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(str(db))
    try:
        names = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        conn.close()


def count(db, sql: str) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


class Publisher(threading.Thread):
    """A door counter publishing crossings (QoS 1, each acknowledged) until stopped."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.sent, self.stop = port, 0, threading.Event()

    def run(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv311)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        try:
            while not self.stop.is_set():
                body = {"v": 1, "id": str(uuid.uuid4()), "seq": self.sent, "ts": format_ts(utcnow()),
                        "type": "crossing", "direction": "in" if self.sent % 3 else "out", "count": 1}  # fmt: skip
                info = client.publish("footfall/dongsi/device/door-main/event", json.dumps(body), qos=1)
                info.wait_for_publish(10)
                self.sent += 1
        finally:
            client.disconnect()
            client.loop_stop()


def wait_subscribed(port: int, store: SqliteStore) -> None:
    """Connected is not yet subscribed: send a device status until ingest has stored one."""
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=mqtt.MQTTv311)
    probe.connect("127.0.0.1", port)
    probe.loop_start()
    status = json.dumps({"v": 1, "state": "offline"})

    def seen() -> bool:
        probe.publish("footfall/dongsi/device/door-main/status", status, qos=1).wait_for_publish(10)
        return any(d["id"] == "door-main" for d in store.devices())

    try:
        wait_until(seen, interval=0.2, message="ingest subscribed")
    finally:
        probe.disconnect()
        probe.loop_stop()


def test_backup_during_ingest_restores_identically(tmp_path, broker):
    cli = CliRunner()
    site_path = write_site(tmp_path, "live")
    site = load_site(site_path, env={"FOOTFALL_MQTT_PORT": str(broker.port)})
    store = SqliteStore(site.db_path)
    service = IngestService(site, store, client_id="ingest-backup-test").start()
    publisher = Publisher(broker.port)
    try:
        assert service.link.wait_connected(10)
        wait_subscribed(broker.port, store)
        publisher.start()
        wait_until(lambda: store.count("events") >= 200, message="events flowing", timeout=30)
        snapshot = tmp_path / "during.db"
        result = cli.invoke(main, ["backup", "-c", str(site_path), str(snapshot)])
        assert result.exit_code == 0, result.output
        taken = count(snapshot, "SELECT count(*) FROM events")
        wait_until(
            lambda: store.count("events") >= taken + 100, message="events still flowing after the backup"
        )
    finally:
        publisher.stop.set()
        publisher.join(10)
    wait_until(lambda: store.count("events") == publisher.sent, message="ingest caught up", timeout=30)
    service.stop()

    # The snapshot is consistent: counters and the rows they count come from the same transactions.
    assert taken >= 200
    assert count(snapshot, "SELECT value FROM metrics WHERE name='events'") == taken
    assert count(snapshot, "SELECT entries FROM rooms_live WHERE room='hall'") == count(
        snapshot, "SELECT count(*) FROM events WHERE direction='in'"
    )

    # Restored into another data folder, the store is identical to the backup, table by table.
    other_path = write_site(tmp_path, "other")
    result = cli.invoke(main, ["restore", "-c", str(other_path), str(snapshot)])
    assert result.exit_code == 0, result.output
    restored_db = load_site(other_path).db_path
    restored, expected = tables(restored_db), tables(snapshot)
    assert [row[3] for row in restored.pop("audit_log")] == ["restore"]  # the restore itself is audited
    expected.pop("audit_log")
    assert restored == expected

    # After the flow, a backup and restore reproduce the live store exactly; the replaced store is kept.
    final = tmp_path / "final.db"
    assert cli.invoke(main, ["backup", "-c", str(site_path), str(final)]).exit_code == 0
    result = cli.invoke(main, ["restore", "-c", str(other_path), str(final)])
    assert result.exit_code == 0, result.output
    assert "previous store is kept" in result.output
    live = tables(site.db_path)
    restored = tables(restored_db)
    restored.pop("audit_log")  # the restore itself is audited
    live.pop("audit_log")
    assert restored == live
    assert count(restored_db, "SELECT count(*) FROM events") == publisher.sent
    assert [r for r in tables(restored_db)["audit_log"] if r[3] == "restore"]
    store.close()


def test_restore_refuses_while_the_store_is_open(tmp_path):
    cli = CliRunner()
    site_path = write_site(tmp_path, "site")
    site = load_site(site_path)
    SqliteStore(site.db_path).close()
    backup = tmp_path / "b.db"
    assert cli.invoke(main, ["backup", "-c", str(site_path), str(backup)]).exit_code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sqlite3,sys; c=sqlite3.connect({str(site.db_path)!r}); "
         "c.execute('select 1'); print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        result = cli.invoke(main, ["restore", "-c", str(site_path), str(backup)])
        assert result.exit_code != 0
        assert f"open in process {holder.pid}" in result.output
        assert cli.invoke(main, ["restore", "-c", str(site_path), str(backup), "--force"]).exit_code == 0
    finally:
        holder.communicate("", timeout=10)
    not_a_store = tmp_path / "nope.db"
    not_a_store.write_bytes(b"hello")
    result = cli.invoke(main, ["restore", "-c", str(site_path), str(not_a_store)])
    assert result.exit_code != 0 and "not a SQLite database" in result.output
