"""The PostgreSQL backend of the store (psycopg 3), chosen by `[server] database = "postgresql://..."` or
FOOTFALL_SERVER_DATABASE. Same tables, same queries as SQLite (server/store_sql.py runs them), versioned
migrations in server/pg_migrations.py, applied once by whichever process opens the store first.

Writers take one transaction-scoped advisory lock, so ingest and the web process write one at a time exactly as
they do on SQLite (BEGIN IMMEDIATE): the checks they make before writing (is this alert already open, is this
schedule id taken) hold, and event row ids grow in commit order, which the rollup watermark relies on.
Ingest's events go in as multi-row INSERTs with ON CONFLICT (device, id) DO NOTHING: one database per site, so
(device, id) is the whole event key; the district store (server/district_store.py) keys on (site, device, id).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from footfall.errors import StoreError
from footfall.server.pg_migrations import MIGRATIONS
from footfall.server.store import Store, Tx
from footfall.server.store_queries import EVENT_COLUMNS, event_values
from footfall.server.store_sql import PgSql

logger = logging.getLogger(__name__)

WRITE_LOCK = 7_466_001  # pg_advisory_xact_lock key: one writer at a time, across processes
MIGRATE_LOCK = 7_466_002
INTEGER_COLUMNS = {"seq", "count", "adults", "children"}
INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{'bigint' if c in INTEGER_COLUMNS else 'text'}[]" for c in EVENT_COLUMNS)
    + ") ON CONFLICT (device, id) DO NOTHING"
)


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PgTx(Tx):
    text_holds_nul = False

    def insert_new_events(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """One INSERT of the batch as column arrays (`unnest`), RETURNING the (device, id) it inserted: a short
        statement that psycopg parses once and caches (a multi-row VALUES list of 9,000 placeholders was parsed
        again for every batch), and one round trip where asking which were stored took one per device. A repeat
        of a stored (device, id) is dropped by the database, not an error."""
        if not rows:
            return set()
        columns = zip(*(event_values(r) for r in rows), strict=True)
        with self.conn.cursor() as cur:
            cur.execute(INSERT_EVENTS + " RETURNING device, id", [list(values) for values in columns])
            return set(cur.fetchall())

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        self.insert_new_events(rows)


class PgStore(Store):
    """A site's store in PostgreSQL: a connection per thread, each write in a transaction."""

    text_holds_nul = False

    backend = "postgresql"

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()
        try:
            self.migrate()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"{redacted(url)}: cannot open the PostgreSQL store ({reason})") from None

    def describe(self) -> str:
        return redacted(self.url)

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    @property
    def conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self._connect()
        return conn

    @property
    def sql(self) -> PgSql:
        return PgSql(self.conn)

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied; returns their versions."""
        conn = self.conn
        applied = []
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))  # processes starting together
            conn.execute(
                "CREATE TABLE IF NOT EXISTS footfall_migrations"
                " (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM footfall_migrations")}
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version not in done:
                    conn.execute(sql)
                    conn.execute("INSERT INTO footfall_migrations (version) VALUES (%s)", (version,))
                    logger.info("store: applied PostgreSQL migration %d", version)
                    applied.append(version)
        return applied

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with contextlib.suppress(psycopg.Error):  # a connection already broken
                conn.close()

    @contextmanager
    def transaction(self) -> Iterator[PgTx]:
        conn = self.conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield PgTx(conn, PgSql(conn))
