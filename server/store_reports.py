"""The store's queries for reports and the schedule: dirty days and the rollup watermark, daily rollup tables,
retention, and activity / class items. Written once for both backends (server/store_sql.py)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from footfall.clock import format_ts
from footfall.server.rollup import ActivityDay, DayRollup, RoomDay
from footfall.server.store_sql import Sql

# Days whose rollup is stored and not waiting for a recount: only their raw events may be purged.
ROLLED = "day IN (SELECT day FROM daily_summary) AND day NOT IN (SELECT day FROM rollup_dirty)"


class ReportQueries:
    sql: Sql

    # --- what to recount ------------------------------------------------------------------------

    def mark_dirty(self, day: str) -> None:
        self.sql.run("INSERT INTO rollup_dirty (day) VALUES (?) ON CONFLICT (day) DO NOTHING", (day,))

    def clear_dirty(self, day: str) -> None:
        self.sql.run("DELETE FROM rollup_dirty WHERE day=?", (day,))

    def dirty_days_before(self, day: str) -> list[str]:
        return [
            r[0] for r in self.sql.tuples("SELECT day FROM rollup_dirty WHERE day < ? ORDER BY day", (day,))
        ]

    def last_event(self) -> int:
        """The row id of the newest stored event (0 if none): the rollup watermark's scale."""
        return self.sql.scalar("SELECT coalesce(max(pk), 0) FROM events")

    def mark_days_of_events_after(self, pk: int) -> None:
        """Mark dirty the day of every event stored after row id `pk`."""
        self.sql.run(
            "INSERT INTO rollup_dirty (day) SELECT DISTINCT day FROM events WHERE pk > ? ON CONFLICT (day) DO NOTHING",
            (pk,),
        )

    def report_state(self, name: str) -> str | None:
        return self.sql.scalar("SELECT value FROM report_state WHERE name=?", (name,))

    def set_report_state(self, name: str, value: str) -> None:
        self.sql.run(
            "INSERT INTO report_state VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value",
            (name, value),
        )

    # --- a day's raw figures and its stored rollup ----------------------------------------------

    def day_checkin_rows(self, day: str) -> list[dict[str, Any]]:
        return self.sql.rows(
            "SELECT purpose, adults, children, activity, member FROM events WHERE day=? AND type='checkin'",
            (day,),
        )

    def identified_purged(self, day: str) -> int:
        return self.sql.scalar("SELECT identified_purged FROM daily_summary WHERE day=?", (day,)) or 0

    def has_rollup(self, day: str) -> bool:
        return self.sql.scalar("SELECT 1 FROM daily_summary WHERE day=?", (day,)) is not None

    def write_day(self, r: DayRollup, purged: int, now: dt.datetime) -> None:
        day = r.day.isoformat()
        for table in ("daily_counts", "daily_activity"):
            self.sql.run(f"DELETE FROM {table} WHERE day=?", (day,))
        self.sql.run("DELETE FROM daily_summary WHERE day=?", (day,))
        self.sql.run(
            "INSERT INTO daily_summary VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                day, r.visits, json.dumps(r.visits_hourly), r.checkins, r.adults, r.children, r.identified, purged,
                json.dumps(r.by_purpose), json.dumps(r.people_by_purpose), r.events, format_ts(now),
            ),
        )  # fmt: skip
        self.sql.many(
            "INSERT INTO daily_counts VALUES (?,?,?,?,?,?,?,?)",
            [
                (day, x.room, x.entries, x.exits, x.peak, x.peak_at, x.occupied_ms, json.dumps(x.hourly))
                for x in r.rooms.values()
            ],
        )
        self.sql.many(
            "INSERT INTO daily_activity VALUES (?,?,?,?,?,?)",
            [(day, a.item, a.checkins, a.adults, a.children, a.door_entries) for a in r.activities.values()],
        )

    def stored_days(self, lo: str, hi: str) -> dict[dt.date, DayRollup]:
        """The stored rollups of the days lo..hi (ISO dates)."""
        days: dict[dt.date, DayRollup] = {}
        for row in self.sql.rows("SELECT * FROM daily_summary WHERE day BETWEEN ? AND ?", (lo, hi)):
            d = dt.date.fromisoformat(row["day"])
            days[d] = DayRollup(
                day=d,
                visits=row["visits"],
                visits_hourly=json.loads(row["visits_hourly"]),
                checkins=row["checkins"],
                adults=row["adults"],
                children=row["children"],
                identified=row["identified"],
                by_purpose=json.loads(row["by_purpose"]),
                people_by_purpose=json.loads(row["people_by_purpose"]),
                events=row["events"],
            )
        for row in self.sql.rows("SELECT * FROM daily_counts WHERE day BETWEEN ? AND ?", (lo, hi)):
            r = days.get(dt.date.fromisoformat(row["day"]))
            if r is not None:
                r.rooms[row["room"]] = RoomDay(
                    row["room"], row["entries"], row["exits"], row["peak"], row["peak_at"], row["occupied_ms"],
                    json.loads(row["hourly"]),
                )  # fmt: skip
        for row in self.sql.rows("SELECT * FROM daily_activity WHERE day BETWEEN ? AND ?", (lo, hi)):
            r = days.get(dt.date.fromisoformat(row["day"]))
            if r is not None:
                r.activities[row["item"]] = ActivityDay(
                    row["item"], row["checkins"], row["adults"], row["children"], row["door_entries"]
                )
        return days

    # --- retention ------------------------------------------------------------------------------

    def purge_members_before(self, day: str) -> int:
        """Remove the member codes of rolled-up days before `day`, keeping each day's count of them."""
        per_day = self.sql.tuples(
            f"SELECT day, count(*) FROM events WHERE day < ? AND member IS NOT NULL AND {ROLLED} GROUP BY day",
            (day,),
        )
        self.sql.many(
            "UPDATE daily_summary SET identified_purged = identified_purged + ? WHERE day=?",
            [(n, d) for d, n in per_day],
        )
        return self.sql.run(
            f"UPDATE events SET member=NULL WHERE day < ? AND member IS NOT NULL AND {ROLLED}", (day,)
        )

    def purge_events_before(self, day: str) -> int:
        """Delete the raw events of rolled-up days before `day`."""
        return self.sql.run(f"DELETE FROM events WHERE day < ? AND {ROLLED}", (day,))

    # --- schedule -------------------------------------------------------------------------------

    def schedule_between(self, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        return self.sql.rows(
            'SELECT * FROM schedule WHERE date BETWEEN ? AND ? ORDER BY date, start, "end", id',
            (start.isoformat(), end.isoformat()),
        )

    def schedule_item(self, item_id: str) -> dict[str, Any] | None:
        return self.sql.one("SELECT * FROM schedule WHERE id=?", (item_id,))

    def insert_schedule_item(self, item: dict[str, Any]) -> None:
        cols = ", ".join(f'"{k}"' for k in item)
        self.sql.run(
            f"INSERT INTO schedule ({cols}) VALUES ({', '.join('?' * len(item))})", tuple(item.values())
        )

    def update_schedule_item(self, item_id: str, fields: dict[str, Any], now: dt.datetime) -> None:
        sets = ", ".join(f'"{k}"=?' for k in fields)
        self.sql.run(
            f"UPDATE schedule SET {sets}, updated_at=? WHERE id=?",
            (*fields.values(), format_ts(now), item_id),
        )

    def delete_schedule_item(self, item_id: str) -> None:
        self.sql.run("DELETE FROM schedule WHERE id=?", (item_id,))
