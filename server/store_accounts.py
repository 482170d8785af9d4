"""The store's queries for staff: users, API tokens, the audit log, and the webhook deliveries of alerts.
Written once for both backends (server/store_sql.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from footfall.clock import format_ts
from footfall.server.store_sql import Sql


class AccountQueries:
    sql: Sql

    # --- users and tokens -----------------------------------------------------------------------

    def get_user(self, username: str) -> dict[str, Any] | None:
        return self.sql.one("SELECT * FROM users WHERE username=?", (username,))

    def users(self) -> list[dict[str, Any]]:
        return self.sql.rows("SELECT username, role, created_at FROM users ORDER BY username")

    def save_user(self, username: str, password_hash: str, role: str, now: dt.datetime) -> None:
        self.sql.run(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES (?,?,?,?)"
            " ON CONFLICT (username) DO UPDATE SET password_hash=excluded.password_hash, role=excluded.role,"
            " session_version=users.session_version+1",  # a new password or role ends the user's sessions
            (username, password_hash, role, format_ts(now)),
        )

    def delete_user(self, username: str) -> bool:
        return self.sql.run("DELETE FROM users WHERE username=?", (username,)) == 1

    def bump_session_version(self, username: str) -> None:
        self.sql.run("UPDATE users SET session_version=session_version+1 WHERE username=?", (username,))

    def save_token(self, token_hash: str, role: str, label: str, now: dt.datetime) -> None:
        self.sql.run("INSERT INTO tokens VALUES (?,?,?,?)", (token_hash, role, label, format_ts(now)))

    def token_role(self, token_hash: str) -> tuple[str, str] | None:
        row = self.sql.tuples("SELECT role, label FROM tokens WHERE token_hash=?", (token_hash,))
        return (row[0][0], row[0][1]) if row else None

    # --- audit log ------------------------------------------------------------------------------

    def add_audit(
        self, at: str, actor: str, action: str, target: str | None, detail: str | None, ip: str | None
    ):
        self.sql.run(
            "INSERT INTO audit_log (at, actor, action, target, detail, ip) VALUES (?,?,?,?,?,?)",
            (at, actor, action, target, detail, ip),
        )

    def audit_rows(
        self, limit: int, before: int | None = None, action: str | None = None, actor: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first; `before` is a pk for paging."""
        where, params = ["1=1"], []
        for clause, value in (
            ("pk < ?", before),
            ("action = ?", action or None),
            ("actor = ?", actor or None),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self.sql.rows(
            f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY pk DESC LIMIT ?", (*params, limit)
        )

    # --- webhook deliveries ---------------------------------------------------------------------

    def queue_deliveries(self, target: str, since: str, kinds: list[str] | None) -> None:
        """One delivery to `target` for each notice since `since` newer than the ones it already has."""
        only = f" AND a.kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        self.sql.run(
            "INSERT INTO alert_deliveries (notice, target, next_at)"
            " SELECT n.pk, ?, n.at FROM alert_notices n JOIN alerts a ON a.pk = n.alert WHERE n.at >= ?"
            " AND n.pk > COALESCE((SELECT max(notice) FROM alert_deliveries WHERE target=?), 0)"
            + only
            + " ON CONFLICT (notice, target) DO NOTHING",
            (target, since, target, *(kinds or ())),
        )

    def due_deliveries(self, at: str, limit: int) -> list[tuple[int, str, int, str]]:
        """(notice, target, attempts, notice time) of the deliveries due at `at`, oldest first."""
        return self.sql.tuples(
            "SELECT d.notice, d.target, d.attempts, n.at FROM alert_deliveries d"
            " JOIN alert_notices n ON n.pk = d.notice"
            " WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_at <= ? ORDER BY d.notice LIMIT ?",
            (at, limit),
        )

    def give_up_delivery(self, notice: int, target: str, at: str, reason: str) -> None:
        self.sql.run(
            "UPDATE alert_deliveries SET failed_at=?, last_error=COALESCE(last_error, ?) WHERE notice=? AND target=?",
            (at, reason, notice, target),
        )

    def claim_delivery(self, notice: int, target: str, until: str) -> None:
        self.sql.run(
            "UPDATE alert_deliveries SET next_at=?, attempts=attempts+1 WHERE notice=? AND target=?",
            (until, notice, target),
        )

    def delivered(self, notice: int, target: str, at: str) -> None:
        self.sql.run(
            "UPDATE alert_deliveries SET delivered_at=?, last_error=NULL WHERE notice=? AND target=?",
            (at, notice, target),
        )

    def retry_delivery(self, notice: int, target: str, at: str, error: str) -> None:
        self.sql.run(
            "UPDATE alert_deliveries SET next_at=?, last_error=? WHERE notice=? AND target=?",
            (at, error, notice, target),
        )

    def notice_alert(self, notice: int) -> dict[str, Any] | None:
        """What a notice says ('raised' / 'cleared') with its alert's columns."""
        return self.sql.one(
            "SELECT n.what, a.* FROM alert_notices n JOIN alerts a ON a.pk = n.alert WHERE n.pk=?", (notice,)
        )

    def pending_deliveries(self) -> int:
        return self.sql.scalar(
            "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL"
        )
