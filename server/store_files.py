"""SQLite store files as files: copies with SQLite's online backup API, what a backup file holds, and SQLite's
integrity check (`footfall backup`, `restore`, `store check`). A PostgreSQL store has PostgreSQL's own tools."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def sqlite_copy(src_path, dst_path) -> None:
    """Copy a database with SQLite's online backup API, in one step: a consistent snapshot even while a writer
    commits (WAL), then check it."""
    src = sqlite3.connect(str(src_path), timeout=30)
    dst = sqlite3.connect(str(dst_path))
    try:
        src.backup(dst)
        problem = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if problem != "ok":
            raise ValueError(f"the copy of {src_path} fails SQLite's integrity check: {problem}")
    finally:
        dst.close()
        src.close()


def events_in(path: Path) -> int:
    """How many events a store file holds."""
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


def tables_in(path: Path) -> set[str]:
    """The tables of an SQLite file, read-only; ValueError when it is not an SQLite database."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path} is not a SQLite database ({exc})") from None


def integrity_problems(path: Path, limit: int = 20) -> list[str]:
    """SQLite's `PRAGMA integrity_check` on a read-only connection; [] when the file is sound."""
    if not path.exists():
        return ["no such file (the server creates it on its first start)"]
    if path.stat().st_size == 0:
        return ["the file is empty (0 bytes): restore it from a backup, or delete it to start a new store"]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in conn.execute(f"PRAGMA integrity_check({int(limit)})")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [f"not a usable SQLite database ({exc})"]
    return [] if rows == ["ok"] else rows
