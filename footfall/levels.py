"""How full a room is, said one way everywhere: the thresholds and the words that the kiosk, the staff dashboard
and the lobby screen all use (their catalogs take the words from here, so they cannot drift apart)."""

from __future__ import annotations

LEVELS = ("ok", "busy", "full")
BUSY_PERCENT = 80  # `busy` from 80 % of capacity, `full` from 100 %

WORDS = {
    "zh-CN": {"ok": "有空位", "busy": "人较多", "full": "已满"},
    "en": {"ok": "Space left", "busy": "Busy", "full": "Full"},
}


def level_for(occupancy: int, capacity: int) -> str:
    """`busy` at BUSY_PERCENT of capacity, `full` at 100 %; a room without a capacity is always `ok`."""
    if capacity <= 0:
        return "ok"
    if occupancy >= capacity:
        return "full"
    if occupancy * 100 >= capacity * BUSY_PERCENT:
        return "busy"
    return "ok"


def level_words(lang: str, prefix: str) -> dict[str, str]:
    """The level words as catalog entries, e.g. {"level.ok": "有空位", ...} for prefix "level."."""
    words = WORDS.get(lang, WORDS["zh-CN"])
    return {prefix + level: words[level] for level in LEVELS}
