"""How the store runs one statement on each backend: the queries (server/store_queries.py) are written once, in
SQL both engines take ('?' placeholders, ON CONFLICT upserts, RETURNING, quoted "user" and "end"), and each
backend's runner hands them to its driver: sqlite3 as written, psycopg with '?' turned into '%s'.

Rows come back as dicts (`rows`, `one`) or as plain tuples (`tuples`, `scalar`): a district day is 600,000 rows,
and building a dict or an sqlite3.Row for each would double the cost of a rollup.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import Any, Protocol


class Sql(Protocol):
    """One connection's way to run the store's portable SQL."""

    def run(self, sql: str, params: Any = ()) -> int: ...  # the number of rows changed
    def many(self, sql: str, rows: list) -> None: ...
    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]: ...
    def tuples(self, sql: str, params: Any = ()) -> list[tuple]: ...
    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None: ...
    def scalar(self, sql: str, params: Any = ()) -> Any: ...


class SqliteSql:
    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def run(self, sql: str, params: Any = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def many(self, sql: str, rows: list) -> None:
        self.conn.executemany(sql, rows)

    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params)]

    def tuples(self, sql: str, params: Any = ()) -> list[tuple]:
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params).fetchall()

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        found = self.conn.execute(sql, params).fetchall()  # fetchall: a RETURNING statement runs to its end
        return dict(found[0]) if found else None

    def scalar(self, sql: str, params: Any = ()) -> Any:
        found = self.tuples(sql, params)
        return found[0][0] if found else None


@lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """The portable statement in psycopg's placeholder style (no statement of the store has a literal '?')."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgSql:
    __slots__ = ("conn",)

    def __init__(self, conn: Any):
        self.conn = conn

    def run(self, sql: str, params: Any = ()) -> int:
        with self.conn.cursor() as cur:
            cur.execute(pg_sql(sql), params)
            return cur.rowcount

    def many(self, sql: str, rows: list) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(pg_sql(sql), rows)

    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(pg_sql(sql), params).fetchall()

    def tuples(self, sql: str, params: Any = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            return cur.execute(pg_sql(sql), params).fetchall()

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Any = ()) -> Any:
        found = self.tuples(sql, params)
        return found[0][0] if found else None
