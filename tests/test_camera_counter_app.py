"""The camera counter as a device: frames from a real clip -> crossings -> outbox -> real Mosquitto -> ingest."""

from __future__ import annotations

import sqlite3

import pytest

from footfall.counter.camera_app import CameraCounterApp
from footfall.counter.config import load_counter_config
from tests.camera_footage import require_bus
from tests.conftest import footfall_env, wait_server_online, wait_until

pytestmark = pytest.mark.integration


def directions(db) -> dict[str, int]:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            rows = conn.execute(
                "select direction, sum(count) from events where device='door-multi-purpose' group by direction"
            )
            return dict(rows.fetchall())
    except sqlite3.OperationalError:
        return {}


def test_camera_counter_publishes_crossings_that_ingest_counts(broker, site_file, procs, tmp_path):
    bus = require_bus()
    procs("server", "-c", str(site_file), "--only", "ingest", env=footfall_env(broker), name="ingest")
    wait_server_online(broker)
    config = tmp_path / "camera.toml"
    config.write_text(
        f'[device]\nid = "door-multi-purpose"\nsite = "dongsi"\nsensor = "camera"\nclock = "synced"\n'
        f'data_dir = "{tmp_path / "pi"}"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'[camera]\nsource = "{bus / "bus.avi"}"\nline = [0, 120, 319, 120]\nin_direction = "down"\n'
    )
    app = CameraCounterApp(load_counter_config(config)).start()
    try:
        # bus.avi holds 7 crossings down (in, with this line) and 7 up (out); the camera counter finds 13-14.
        # Wait for the end of the clip (the tracker's last crossings come when it is caught up at the end), then
        # for the server to have every crossing the counter made.
        counts = wait_until(
            lambda: (
                not app._reader.is_alive()
                and app.runtime.outbox.queue == 0
                and (c := directions(tmp_path / "data" / "footfall.db"))
                and sum(c.values()) == app.crossings
                and c
            ),
            120,
            interval=0.5,
            message="crossings stored",
        )
        assert counts["in"] == 7 and 6 <= counts["out"] <= 7
        assert app.crossings == sum(counts.values())
        health = app.runtime.health()
        assert health["camera"] in ("ok", "no_frames")  # the clip has ended by now
        # Learned, not given: how sure it is, and the size at the line; a file is no stream.
        assert health["person_size"] in ("learning", "unsure", "ok")
        assert 0 <= health["person_size_confidence"] <= 1 and health["person_size_px"] > 0
        assert not any(key.startswith("stream") for key in health)
    finally:
        app.stop()
    assert not list((tmp_path / "pi").glob("*.png")) and not list((tmp_path / "pi").glob("*.jpg"))
