"""Today's sessions for the lobby big screen (/screen): each class or activity with where it is and how many
places are left, so a resident can read from across the hall where to go and whether there is still room.

Places left = the item's capacity minus the people (adults + children) who checked in for it at a kiosk today,
never below zero. A session whose room is full right now (live level `full`) is shown as full whatever its places.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from footfall.site import SiteConfig

ZH_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    """1..99 as Chinese numerals: 2 -> 二, 12 -> 十二, 21 -> 二十一 (as the kiosk writes floors)."""
    if n < 10:
        return ZH_DIGITS[n]
    tens, ones = divmod(n, 10)
    return (ZH_DIGITS[tens] if tens > 1 else "") + "十" + (ZH_DIGITS[ones] if ones else "")


def floor_words(floor: int | None, lang: str) -> str:
    """ "二楼" / "地下一层", "floor 2" / "basement 1"; "" without a floor."""
    if not floor:
        return ""
    n = abs(floor)
    if lang == "en":
        return f"floor {n}" if floor > 0 else f"basement {n}"
    return f"{zh_number(n)}楼" if floor > 0 else f"地下{zh_number(n)}层"


def people_by_item(checkins: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """People checked in for each schedule item (a check-in names its item in `activity`)."""
    out: dict[str, int] = {}
    for row in checkins:
        if row.get("activity"):
            out[row["activity"]] = (
                out.get(row["activity"], 0) + (row.get("adults") or 0) + (row.get("children") or 0)
            )
    return out


def sessions(
    site: SiteConfig,
    items: Iterable[Mapping[str, Any]],
    checkins: Iterable[Mapping[str, Any]],
    levels: Mapping[str, str],
    now_local: dt.datetime,
) -> list[dict[str, Any]]:
    """Today's items in start order, each with its room, floor, places left, `room_full` and `state`
    (`on` while it runs, `next` before, `done` after)."""
    taken = people_by_item(checkins)
    clock = now_local.strftime("%H:%M")
    out = []
    for item in sorted(items, key=lambda i: (i["start"], i["id"])):
        room = site.rooms_by_id.get(item["room"])
        capacity = item.get("capacity") or 0
        people = taken.get(item["id"], 0)
        state = "done" if item["end"] <= clock else ("on" if item["start"] <= clock else "next")
        out.append(
            {
                **{k: item.get(k) for k in ("id", "title", "title_en", "kind", "room", "start", "end")},
                "room_obj": room,
                "floor": room.floor if room else None,
                "capacity": capacity,
                "people": people,
                "places_left": max(0, capacity - people),
                "room_full": levels.get(item["room"]) == "full",
                "state": state,
            }
        )
    return out
