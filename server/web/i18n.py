"""Message catalogs (server/i18n/<lang>.json, read by footfall.i18n): Chinese first, English available.

The language comes from `?lang=` (remembered in the session), else the session, else the site's
`[server] language`. Templates call `t("key")`; pages embed the catalog as JSON for their scripts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, current_app, request, session, url_for

from footfall.i18n import DEFAULT, LANGUAGES, load_catalog

logger = logging.getLogger(__name__)

CATALOG_DIR = Path(__file__).resolve().parents[1] / "i18n"


def catalog(lang: str) -> dict[str, str]:
    return load_catalog(CATALOG_DIR, lang, "level.")  # with the kiosk's level words


def current_lang() -> str:
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        if session.get("lang") != wanted:
            session["lang"] = wanted
        return wanted
    stored = session.get("lang")
    if stored in LANGUAGES:
        return stored
    default = current_app.extensions["footfall"].site.server.language
    return default if default in LANGUAGES else DEFAULT


def translate(key: str, lang: str | None = None, **values: Any) -> str:
    lang = lang or current_lang()
    text = catalog(lang).get(key)
    if text is None:
        logger.warning("no %s text for %r", lang, key)
        text = catalog(DEFAULT).get(key, key)
    return text.format(**values) if values else text


def room_name(room: Any, lang: str | None = None) -> str:
    """`name` in Chinese, `name_en` in English (falls back to `name`). Takes a Room or a room state dict."""
    lang = lang or current_lang()
    get = room.get if isinstance(room, dict) else lambda k: getattr(room, k, None)
    if lang == "en" and get("name_en"):
        return get("name_en")
    return get("name")


def lang_url(lang: str) -> str:
    """This page's URL in another language (keeps the other query parameters, e.g. a screen token)."""
    args = {**(request.view_args or {}), **request.args.to_dict(), "lang": lang}
    return url_for(request.endpoint or "dashboard.index", **args)


def init_app(app: Flask) -> None:
    @app.context_processor
    def _i18n_helpers() -> dict[str, Any]:
        lang = current_lang()
        return {
            "lang": lang,
            "t": lambda key, **values: translate(key, lang, **values),
            "room_name": lambda room: room_name(room, lang),
            "catalog": catalog(lang),
            "lang_url": lang_url,
            "languages": LANGUAGES,
        }
