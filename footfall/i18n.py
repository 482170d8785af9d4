"""The one loader of message catalogs (`<dir>/<lang>.json`) for the web, the reports and the kiosk.

Each app keeps its own words in its own folder (server/i18n, kiosk/i18n); this module reads them the same way:
Chinese first, English available, the room-level words from footfall.levels merged in (so "已满" cannot drift
between the kiosk and the dashboard), and a damaged file is an error naming the file, not a KeyError later.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from footfall.errors import ConfigError
from footfall.levels import level_words

LANGUAGES = ("zh-CN", "en")
DEFAULT = "zh-CN"


def load_catalog(directory: str | Path, lang: str, level_prefix: str = "level.") -> dict[str, str]:
    """The catalog of `lang` (the default language's for one Footfall does not have), read once per process.

    Callers must not change the dict they get: it is shared.
    """
    return _load(str(Path(directory).resolve()), lang if lang in LANGUAGES else DEFAULT, level_prefix)


def load_catalogs(directory: str | Path, level_prefix: str = "level.") -> dict[str, dict[str, str]]:
    """Every language's catalog, for a page that switches language without a reload (the kiosk)."""
    return {lang: load_catalog(directory, lang, level_prefix) for lang in LANGUAGES}


@cache
def _load(directory: str, lang: str, level_prefix: str) -> dict[str, str]:
    path = Path(directory) / f"{lang}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), None, f"the {lang} message catalog is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(str(path), None, f"not a valid JSON message catalog: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(str(path), None, "a message catalog must be one JSON object of text keys and texts")
    return {**data, **level_words(lang, level_prefix)}
