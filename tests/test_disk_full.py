"""A full disk, for real (#10 item 3): the data folder is a small tmpfs filled to the last byte mid-stream. Ingest stops
acknowledging, /healthz says the store cannot be written, and once space is freed every event arrives exactly once,
without a restart. Needs root for `mount -t tmpfs` (CI runs as root); fails, never skips, without it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from footfall.demo.broker import free_port
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_ingest_poison import publish_crossings
from tests.test_supervision import health

pytestmark = pytest.mark.integration


@pytest.fixture
def tmpfs_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(data)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"this test fills a real tmpfs and needs root to mount it: {mounted.stderr.decode().strip()}"
        )
    yield data
    subprocess.run(["umount", "-l", str(data)], check=True)


def fill(folder: Path) -> Path:
    """Write zeros until the filesystem refuses (ENOSPC)."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError:
            pass
    # Then the last few bytes the chunks did not fit.
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def stored(db: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("select count(*), count(distinct id) from events").fetchone()


def test_full_disk_mid_stream_degrades_then_resumes_with_nothing_lost(tmpfs_data, broker, site_file, procs):
    port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{port}")
    ingest = procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    web = procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    db = tmpfs_data / "footfall.db"
    wait_until(lambda: health(port)[0] == 200, 30, message="healthy")
    wait_server_online(broker)
    publish_crossings(broker, 0, 10)
    wait_until(lambda: stored(db) == (10, 10), 15, message="the first 10 events")

    filler = fill(tmpfs_data)
    publish_crossings(broker, 10, 300)
    status, body = wait_until(
        lambda: (h := health(port))[0] == 503 and h, 60, interval=0.5, message="degraded"
    )
    assert body["detail"].startswith("store: cannot write") and "full" in body["detail"], body
    assert stored(db)[0] < 310  # the disk really stopped it
    assert ingest.alive() and web.alive()

    filler.unlink()
    wait_until(lambda: stored(db) == (310, 310), 60, message="every event, once, after space returned")
    wait_until(lambda: health(port)[0] == 200, 20, message="healthy again")
    assert "store writable again" in ingest.output()
    assert ingest.alive() and web.alive()
