"""A damaged or empty store file is one line naming the file, never a traceback or a silent new store; `footfall
store check` runs SQLite's integrity check (#10 item 3). Real SQLite files, the real `footfall` command."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from footfall.server.store import SqliteStore
from tests.webkit import add_crossings


def footfall(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "footfall.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def db(site_file, tmp_path):
    return tmp_path / "data" / "footfall.db"


def one_line_error(result: subprocess.CompletedProcess, path) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("part", [["--only", "ingest"], ["--only", "web"], []])
def test_empty_store_file_is_one_line_naming_it(site_file, db, part):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")
    line = one_line_error(footfall("server", "-c", str(site_file), *part), db)
    assert "empty (0 bytes)" in line
    assert db.stat().st_size == 0  # not quietly turned into a new, empty store


@pytest.mark.parametrize("part", [["--only", "ingest"], ["--only", "web"], []])
def test_garbage_store_file_is_one_line_naming_it(site_file, db, part):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    line = one_line_error(footfall("server", "-c", str(site_file), *part), db)
    assert "not a usable Footfall store" in line


def test_store_check_ok_then_damaged(site_file, db):
    from footfall.site import load_site

    site = load_site(str(site_file))
    store = SqliteStore(site.db_path)
    add_crossings(store, [("door-main", "in", 1, i % 600) for i in range(3000)])
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    ok = footfall("store", "check", "-c", str(site_file))
    assert ok.returncode == 0 and ok.stdout.strip() == f"{db}: ok"

    # Overwrite pages in the middle of the file (the header stays valid): the B-trees no longer add up.
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    with open(db, "r+b") as fh:
        for page in range(pages // 3, pages // 3 + 4):
            fh.seek(page * page_size)
            fh.write(b"\x07" * page_size)
    bad = footfall("store", "check", "-c", str(site_file))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() and all(line.startswith(f"{db}: ") for line in bad.stderr.strip().splitlines())
    assert "ok" not in bad.stdout


def test_store_check_on_empty_and_missing_files(site_file, db):
    missing = footfall("store", "check", "-c", str(site_file))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")
    empty = footfall("store", "check", "-c", str(site_file))
    assert empty.returncode == 1 and "empty" in empty.stderr
