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


@migrations()
def m002_reports(db: Database) -> None:
    """Daily rollups (kept after raw events are purged), dirty days, the activity and class schedule."""
    db.executescript(
        """
        CREATE TABLE daily_summary (
            day TEXT PRIMARY KEY,
            visits INTEGER NOT NULL,
            visits_hourly TEXT NOT NULL,       -- JSON list of 24 building visits per local clock hour
            checkins INTEGER NOT NULL,
            adults INTEGER NOT NULL,
            children INTEGER NOT NULL,
            identified INTEGER NOT NULL,
            identified_purged INTEGER NOT NULL DEFAULT 0,
            by_purpose TEXT NOT NULL,          -- JSON {purpose: check-ins}
            people_by_purpose TEXT NOT NULL,   -- JSON {purpose: adults + children}
            events INTEGER NOT NULL,
            rolled_at TEXT NOT NULL
        );
        CREATE TABLE daily_counts (
            day TEXT NOT NULL,
            room TEXT NOT NULL,
            entries INTEGER NOT NULL,
            exits INTEGER NOT NULL,
            peak INTEGER NOT NULL,
            peak_at TEXT,
            occupied_ms INTEGER NOT NULL,
            hourly TEXT NOT NULL,              -- JSON list of 24 entries per local clock hour
            PRIMARY KEY (day, room)
        );
        CREATE TABLE daily_activity (
            day TEXT NOT NULL,
            item TEXT NOT NULL,
            checkins INTEGER NOT NULL,
            adults INTEGER NOT NULL,
            children INTEGER NOT NULL,
            door_entries INTEGER,
            PRIMARY KEY (day, item)
        );
        CREATE TABLE rollup_dirty (day TEXT PRIMARY KEY);
        CREATE TABLE report_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE schedule (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            title_en TEXT,
            kind TEXT NOT NULL,
            room TEXT NOT NULL,
            date TEXT NOT NULL,
            start TEXT NOT NULL,
            "end" TEXT NOT NULL,
            capacity INTEGER,
            partner TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX schedule_date ON schedule (date, start);
        """
    )


@migrations()
def m003_audit(db: Database) -> None:
    """Who did what: staff actions (adjustments, schedule edits, exports, user changes, logins). Append-only."""
    db.executescript(
        """
        CREATE TABLE audit_log (
            pk INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,         -- username, token:<label> or cli:<os user>
            action TEXT NOT NULL,        -- e.g. login, login_failed, adjust, user_add, export
            target TEXT,                 -- what it acted on (room, user, report...)
            detail TEXT,                 -- JSON object
            ip TEXT
        );
        CREATE INDEX audit_log_at ON audit_log (at);
        """
    )


@migrations()
def m004_alerts(db: Database) -> None:
    """Help requests from kiosks ("call staff"), shown on the dashboard until a staff member clears them."""
    db.executescript(
        """
        CREATE TABLE alerts (
            pk INTEGER PRIMARY KEY,
            device TEXT NOT NULL,
            event_id TEXT NOT NULL,
            room TEXT,
            raised_at TEXT NOT NULL,
            cleared_at TEXT,
            cleared_by TEXT,
            UNIQUE (device, event_id)
        );
        CREATE INDEX alerts_open ON alerts (cleared_at);
        """
    )


@migrations()
def m005_session_version(db: Database) -> None:
    """A per-user session version: logout, a new password, a role change bump it and end every session."""
    db.executescript("ALTER TABLE users ADD COLUMN session_version INTEGER NOT NULL DEFAULT 0;")


@migrations()
def m006_dead_letter_counts(db: Database) -> None:
    """Dead letters per device and reason, stored or dropped (rate limit), kept when old rows are pruned."""
    db.executescript(
        """
        CREATE TABLE dead_letter_counts (
            device TEXT NOT NULL,        -- a device of the site file, or "(unknown)"
            reason TEXT NOT NULL,        -- the field that failed (payload, seq, ts, topic...) or "error"
            stored INTEGER NOT NULL DEFAULT 0,
            dropped INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (device, reason)
        );
        """
    )


@migrations()
def m007_staff_alerts(db: Database) -> None:
    """Alerts of every kind (help calls, offline devices, stalled ingest, low disk...) and their webhook deliveries.

    An alert is open until cleared (by staff, or by the server when its condition ends). Raising or clearing one
    writes a notice in the same transaction; the delivery worker turns each notice into one delivery per webhook,
    so a notice committed before a crash is still delivered after the restart.
    """
    db.executescript(
        """
        ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'help';
        ALTER TABLE alerts ADD COLUMN message TEXT;
        ALTER TABLE alerts ADD COLUMN calls INTEGER NOT NULL DEFAULT 1;   -- repeats joined to this open alert
        ALTER TABLE alerts ADD COLUMN last_at TEXT;
        CREATE INDEX alerts_open_kind ON alerts (kind, device, cleared_at);
        CREATE TABLE alert_notices (
            pk INTEGER PRIMARY KEY,
            alert INTEGER NOT NULL,
            what TEXT NOT NULL,          -- raised | cleared
            at TEXT NOT NULL
        );
        CREATE TABLE alert_deliveries (
            notice INTEGER NOT NULL,
            target TEXT NOT NULL,        -- the webhook's name
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT NOT NULL,       -- due time, or the end of a worker's claim on it
            delivered_at TEXT,
            failed_at TEXT,              -- given up (give_up_after_h)
            last_error TEXT,
            PRIMARY KEY (notice, target)
        );
        CREATE INDEX alert_deliveries_due ON alert_deliveries (delivered_at, failed_at, next_at);
        """
    )
