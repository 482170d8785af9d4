"""Versioned schema migrations for the SQLite store (sqlite-utils' Migrations). Append, never edit."""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("footfall")


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE events (
            pk INTEGER PRIMARY KEY,
            device TEXT NOT NULL,
            id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            ts TEXT NOT NULL,            -- effective UTC time used for counting
            device_ts TEXT NOT NULL,     -- as sent by the device
            received_at TEXT NOT NULL,
            day TEXT NOT NULL,           -- local business day of ts
            clock_flag TEXT,             -- NULL, 'unsynced' or 'future': ts was replaced by received_at
            door TEXT,
            direction TEXT,
            count INTEGER,
            purpose TEXT,
            adults INTEGER,
            children INTEGER,
            activity TEXT,
            member TEXT,
            room TEXT,
            UNIQUE (device, id)
        );
        CREATE INDEX events_day ON events (day, type);
        CREATE INDEX events_device_seq ON events (device, seq);
        CREATE TABLE dead_letters (
            pk INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            excerpt TEXT NOT NULL,
            size INTEGER NOT NULL,
            reason TEXT NOT NULL,
            received_at TEXT NOT NULL
        );
        CREATE TABLE rooms_live (
            room TEXT PRIMARY KEY,
            day TEXT NOT NULL,
            occupancy INTEGER NOT NULL,
            raw_net INTEGER NOT NULL,
            corrected INTEGER NOT NULL,
            entries INTEGER NOT NULL,
            exits INTEGER NOT NULL,
            peak INTEGER NOT NULL,
            peak_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE adjustments (
            pk INTEGER PRIMARY KEY,
            room TEXT NOT NULL,
            at TEXT NOT NULL,
            user TEXT NOT NULL,
            from_value INTEGER NOT NULL,
            to_value INTEGER NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            kind TEXT,
            state TEXT NOT NULL,
            last_seen TEXT,
            queue INTEGER,
            last_seq INTEGER,
            version TEXT,
            health TEXT
        );
        CREATE TABLE users (
            username TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            label TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE metrics (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        """
    )
