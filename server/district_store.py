"""The district's PostgreSQL store (psycopg 3): every site's events under one unique (site, device, id) key,
versioned migrations, bulk inserts that drop repeats (`ON CONFLICT DO NOTHING`), and the per-site, per-room
daily rollup done inside PostgreSQL.

A site's doors are registered from its site file (`footfall district add-site`), so the district can turn door
crossings into room entries exactly as the site's own server does (a crossing `in` enters the door's inside room
and leaves its outside room).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

import psycopg

from footfall.site import SiteConfig

logger = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: events, dead letters, sites and doors, daily rollup
    """
    CREATE TABLE events (
        site text NOT NULL, device text NOT NULL, id text NOT NULL,
        seq bigint NOT NULL, type text NOT NULL, ts timestamptz NOT NULL, received timestamptz NOT NULL,
        direction text, count integer NOT NULL DEFAULT 1,
        purpose text, adults integer, children integer, room text,
        PRIMARY KEY (site, device, id)
    );
    CREATE INDEX events_site_ts ON events (site, ts);
    CREATE TABLE dead_letters (
        n bigserial PRIMARY KEY, received timestamptz NOT NULL, topic text NOT NULL,
        reason text NOT NULL, excerpt text NOT NULL
    );
    CREATE TABLE sites (site text PRIMARY KEY, name text NOT NULL, timezone text NOT NULL, day_starts time NOT NULL);
    CREATE TABLE doors (
        site text NOT NULL REFERENCES sites ON DELETE CASCADE, device text NOT NULL,
        door text NOT NULL, inside text NOT NULL, outside text NOT NULL,
        PRIMARY KEY (site, device)
    );
    CREATE TABLE daily_rooms (
        site text NOT NULL, day date NOT NULL, room text NOT NULL,
        entries integer NOT NULL, exits integer NOT NULL,
        PRIMARY KEY (site, day, room)
    );
    """,
    # 2: what the district dashboard shows live, from the sites' retained topics; district accounts
    """
    ALTER TABLE sites ADD COLUMN url text;
    CREATE TABLE live_rooms (
        site text NOT NULL, room text NOT NULL, occupancy integer NOT NULL, capacity integer NOT NULL,
        level text NOT NULL, updated timestamptz NOT NULL, PRIMARY KEY (site, room)
    );
    CREATE TABLE live_devices (
        site text NOT NULL, device text NOT NULL, online boolean NOT NULL, updated timestamptz NOT NULL,
        PRIMARY KEY (site, device)
    );
    CREATE TABLE daily_sites (site text NOT NULL, day date NOT NULL, visits integer NOT NULL, PRIMARY KEY (site, day));
    CREATE TABLE live_alerts (site text PRIMARY KEY, open integer NOT NULL, updated timestamptz NOT NULL);
    CREATE TABLE users (
        name text PRIMARY KEY, password_hash text NOT NULL, role text NOT NULL CHECK (role IN ('district', 'site')),
        site text, CHECK ((role = 'site') = (site IS NOT NULL))
    );
    """,
    # 3: room names and today's entries from the retained room state (the district web shows them)
    """
    ALTER TABLE live_rooms ADD COLUMN name text, ADD COLUMN entries_today integer;
    """,
]

EVENT_FIELDS = (
    "site", "device", "id", "seq", "type", "ts", "received", "direction", "count",
    "purpose", "adults", "children", "room",
)  # fmt: skip

# One day's crossings per site as moves between rooms: (site, entered, left_room, n). Each site's own local day;
# 600,000 rows become (site, device, direction) sums before any join.
MOVES_SQL = """
    WITH bounds AS (
        SELECT site, ((%(day)s::date + day_starts) AT TIME ZONE timezone) AS start,
               ((%(day)s::date + 1 + day_starts) AT TIME ZONE timezone) AS stop
        FROM sites
    ), per_door AS (
        SELECT e.site, e.device, e.direction, sum(e.count) AS n
        FROM events e JOIN bounds b ON b.site = e.site AND e.ts >= b.start AND e.ts < b.stop
        WHERE e.type = 'crossing'
        GROUP BY 1, 2, 3
    )
    SELECT p.site, CASE WHEN p.direction = 'in' THEN d.inside ELSE d.outside END AS entered,
           CASE WHEN p.direction = 'in' THEN d.outside ELSE d.inside END AS left_room, p.n
    FROM per_door p JOIN doors d ON d.site = p.site AND d.device = p.device
"""

# A batch is COPYed into a per-connection temporary table and moved with one INSERT that drops repeats: about
# twice as fast as a pipelined executemany of single-row inserts, on the worker's side and on PostgreSQL's.
# Binary COPY with the column types given: no text formatting and escaping of each value in Python (a fifth
# less of the worker's time per stored event).
CREATE_INCOMING = "CREATE TEMP TABLE IF NOT EXISTS incoming (LIKE events) ON COMMIT DELETE ROWS"
COPY_INCOMING = f"COPY incoming ({', '.join(EVENT_FIELDS)}) FROM STDIN (FORMAT BINARY)"
EVENT_TYPES = (
    "text", "text", "text", "int8", "text", "timestamptz", "timestamptz", "text", "int4",
    "text", "int4", "int4", "text",
)  # fmt: skip
INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(EVENT_FIELDS)}) SELECT {', '.join(EVENT_FIELDS)} FROM incoming "
    "ON CONFLICT (site, device, id) DO NOTHING"
)


class DistrictStore:
    def __init__(self, dsn: str, migrate: bool = True):
        """`migrate=False` for a reader that opens a connection per request (the district web)."""
        self.dsn = dsn
        self.conn = psycopg.connect(dsn)
        self._incoming = False
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(7455)")  # workers starting together migrate once
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in self.conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version not in done:
                    self.conn.execute(sql)
                    self.conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    logger.info("district store: applied migration %d", version)

    def close(self) -> None:
        self.conn.close()

    def reopen(self) -> None:
        """A new connection for a lost one (PostgreSQL restarted); the temporary COPY table went with the old."""
        self.conn.close()
        self.conn = psycopg.connect(self.dsn)
        self._incoming = False

    def add_site(self, site: SiteConfig) -> None:
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO sites VALUES (%s, %s, %s, %s) ON CONFLICT (site) DO UPDATE SET name = excluded.name,"
                " timezone = excluded.timezone, day_starts = excluded.day_starts",
                (site.id, site.name, site.timezone.key, site.day_starts),
            )
            self.conn.execute("DELETE FROM doors WHERE site = %s", (site.id,))
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO doors VALUES (%s, %s, %s, %s, %s)",
                    [(site.id, d.device, d.id, d.inside, d.outside) for d in site.doors],
                )

    def set_site_url(self, site: str, url: str | None) -> None:
        with self.conn.transaction():
            self.conn.execute("UPDATE sites SET url = %s WHERE site = %s", (url, site))

    def store_live(self, rooms: list[tuple], devices: list[tuple], alerts: list[tuple]) -> None:
        """Upsert the latest room states (site, room, occupancy, capacity, level, updated, name, entries_today),
        device states
        (site, device, online, updated) and open-alert counts (site, open, updated); an older update never
        overwrites a newer one (workers may see them in any order)."""
        # Upserts in key order, so two workers writing the same rows never deadlock each other.
        rooms, devices, alerts = sorted(rooms), sorted(devices), sorted(alerts)
        with self.conn.transaction(), self.conn.cursor() as cur:
            if rooms:
                cur.executemany(
                    "INSERT INTO live_rooms (site, room, occupancy, capacity, level, updated, name, entries_today)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, room) DO UPDATE"
                    " SET occupancy = excluded.occupancy, capacity = excluded.capacity, level = excluded.level,"
                    " updated = excluded.updated, name = excluded.name, entries_today = excluded.entries_today"
                    " WHERE live_rooms.updated <= excluded.updated",
                    rooms,
                )
            if devices:
                cur.executemany(
                    "INSERT INTO live_devices VALUES (%s, %s, %s, %s) ON CONFLICT (site, device) DO UPDATE"
                    " SET online = excluded.online, updated = excluded.updated"
                    " WHERE live_devices.updated <= excluded.updated",
                    devices,
                )
            if alerts:
                cur.executemany(
                    "INSERT INTO live_alerts VALUES (%s, %s, %s) ON CONFLICT (site) DO UPDATE"
                    " SET open = excluded.open, updated = excluded.updated"
                    " WHERE live_alerts.updated <= excluded.updated",
                    alerts,
                )

    def store_batch(
        self, rows: Iterable[tuple], dead: Iterable[tuple[dt.datetime, str, str, str]] = ()
    ) -> int:
        """Insert events (tuples in EVENT_FIELDS order) and dead letters in one transaction; returns new rows."""
        rows, dead = list(rows), list(dead)
        created = False
        with self.conn.transaction(), self.conn.cursor() as cur:
            before = 0
            if rows:
                if not self._incoming:
                    cur.execute(CREATE_INCOMING)
                    created = True
                with cur.copy(COPY_INCOMING) as copy:
                    copy.set_types(EVENT_TYPES)
                    for row in rows:
                        copy.write_row(row)
                cur.execute(INSERT_EVENTS)
                before = cur.rowcount
            if dead:
                cur.executemany(
                    "INSERT INTO dead_letters (received, topic, reason, excerpt) VALUES (%s, %s, %s, %s)",
                    dead,
                )
        # Only once committed: a rolled-back first batch takes the new table with it, and the next must make it.
        self._incoming = self._incoming or created
        return before

    def count_events(self, site: str | None = None) -> int:
        sql, args = ("SELECT count(*) FROM events", ()) if site is None else (
            "SELECT count(*) FROM events WHERE site = %s", (site,))  # fmt: skip
        return self.conn.execute(sql, args).fetchone()[0]

    def duplicates(self) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM (SELECT site, device, seq FROM events GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
        ).fetchone()[0]

    def rollup_day(self, day: dt.date) -> int:
        """Every registered site's room entries and exits, and its visits (entries through doors from outdoors),
        for its local `day` (its own zone and day start), recomputed inside PostgreSQL; returns the number of
        (site, room) rows."""
        with self.conn.transaction():
            self.conn.execute("DELETE FROM daily_rooms WHERE day = %s", (day,))
            self.conn.execute("DELETE FROM daily_sites WHERE day = %s", (day,))
            self.conn.execute(f"CREATE TEMP TABLE moves ON COMMIT DROP AS {MOVES_SQL}", {"day": day})
            cur = self.conn.execute(
                """
                INSERT INTO daily_rooms (site, day, room, entries, exits)
                SELECT site, %(day)s, room, sum(entries), sum(exits) FROM (
                    SELECT site, entered AS room, sum(n) AS entries, 0 AS exits FROM moves GROUP BY 1, 2
                    UNION ALL
                    SELECT site, left_room, 0, sum(n) FROM moves GROUP BY 1, 2
                ) per_room
                WHERE room <> 'outdoors' GROUP BY site, room
                """,
                {"day": day},
            )
            rows = cur.rowcount
            self.conn.execute(
                "INSERT INTO daily_sites (site, day, visits) SELECT s.site, %(day)s, coalesce(sum(m.n), 0)"
                " FROM sites s LEFT JOIN moves m ON m.site = s.site AND m.left_room = 'outdoors' GROUP BY s.site",
                {"day": day},
            )
            return rows

    def visits_on(self, day: dt.date) -> dict[str, int]:
        """Each site's visits so far on its local `day`, computed now (the dashboard's "today")."""
        rows = self.conn.execute(
            f"SELECT site, sum(n) FROM ({MOVES_SQL}) m WHERE left_room = 'outdoors' GROUP BY site",
            {"day": day},
        ).fetchall()
        self.conn.commit()
        return {site: int(n) for site, n in rows}

    def daily_rooms(self, site: str, day: dt.date) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT room, entries, exits FROM daily_rooms WHERE site = %s AND day = %s", (site, day)
        )
        return {room: {"entries": e, "exits": x} for room, e, x in rows}
