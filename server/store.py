"""The store: every SQL statement of the server sits behind it, with two backends.

- SQLite through sqlite-utils, the embedded default: one file in `[server] data_dir` (WAL, so the web process
  reads beside ingest's writer; synchronous=FULL), versioned migrations in server/migrations.py.
- PostgreSQL through psycopg 3 when `[server] database = "postgresql://..."` (or FOOTFALL_SERVER_DATABASE) is
  set: server/store_pg.py, versioned migrations in server/pg_migrations.py.

The queries are written once (server/store_queries.py, store_reports.py, store_accounts.py) and both backends run
them (server/store_sql.py). Ingest writes in batches through `transaction()`; the web process reads and makes
staff changes. `open_store(site)` opens the one the site file names.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from footfall.errors import StoreError
from footfall.server.migrations import migrations
from footfall.server.store_accounts import AccountQueries
from footfall.server.store_queries import EVENT_COLUMNS, EXCERPT_BYTES, LiveQueries  # noqa: F401 - re-exported
from footfall.server.store_reports import ReportQueries
from footfall.server.store_sql import SqliteSql

# SQLite errors that say the store cannot take writes now (full disk, I/O, read-only, locked, damaged), as opposed
# to a problem with one message: ingest then stops acknowledging and retries rather than dead-lettering.
UNAVAILABLE = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN",
               "SQLITE_CORRUPT", "SQLITE_NOTADB")  # fmt: skip


def store_unavailable(exc: BaseException) -> bool:
    """The store (either backend) cannot be written now, as opposed to a problem with one message."""
    if isinstance(exc, sqlite3.DatabaseError):
        return (getattr(exc, "sqlite_errorname", "") or "").startswith(UNAVAILABLE)
    if type(exc).__module__.startswith("psycopg"):
        import psycopg

        # Connection lost, server shut down, disk full (class 53, 57, 58, 08): OperationalError's subclasses.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return False


class Queries(LiveQueries, ReportQueries, AccountQueries):
    """Every query of the store, over `self.sql`."""


class Tx(Queries):
    """Writes (and reads) inside one transaction (ingest batch or staff action)."""

    def __init__(self, conn: Any, sql: Any = None):
        self.conn = conn
        self.sql = sql or SqliteSql(conn)


class Store(Queries):
    """What both backends share: reads outside a transaction, and staff actions each in a transaction."""

    backend = ""

    def transaction(self):  # -> contextmanager yielding Tx
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store is, for logs (never a password)."""
        raise NotImplementedError

    def put_user(self, username: str, password_hash: str, role: str, now: dt.datetime) -> None:
        with self.transaction() as tx:
            tx.save_user(username, password_hash, role, now)

    def end_sessions(self, username: str) -> None:
        """Every session cookie of `username` stops working (web.auth checks the version on each request)."""
        with self.transaction() as tx:
            tx.bump_session_version(username)

    def add_token(self, token_hash: str, role: str, label: str, now: dt.datetime) -> None:
        with self.transaction() as tx:
            tx.save_token(token_hash, role, label, now)


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith(("postgresql://", "postgres://"))


def open_store(site: Any) -> Store:
    """The store the site file names: `[server] database` (a postgresql:// URL), else SQLite in data_dir."""
    url = site.server.database or ""
    if is_postgres(url):
        try:
            from footfall.server.store_pg import PgStore
        except ImportError:
            raise StoreError(
                "[server] database names PostgreSQL, but psycopg is not installed: pip install 'footfall[postgresql]'"
            ) from None
        return PgStore(url)
    return SqliteStore(url or site.db_path)


class SqliteStore(Store):
    """The embedded default: one SQLite file, a connection per thread, one writer at a time in this process."""

    backend = "sqlite"

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        if self.path != ":memory:" and Path(self.path).exists() and Path(self.path).stat().st_size == 0:
            raise StoreError(
                f"{self.path}: the store file is empty (0 bytes); restore it from a backup, or delete it to start"
                " a new store"
            )
        try:
            conn = self._connect()
            migrations.apply(Database(conn))
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a usable Footfall store ({exc}); `footfall store check` tells more"
            ) from None
        self._local.conn = conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def describe(self) -> str:
        return self.path

    @property
    def sql(self) -> SqliteSql:
        return SqliteSql(self.conn)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        conn = self.conn
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn)
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full) may have ended the transaction already.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
