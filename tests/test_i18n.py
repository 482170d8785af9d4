"""One message-catalog loader (footfall.i18n) for the web, the reports and the kiosk."""

from __future__ import annotations

import re

import pytest

from footfall import i18n
from footfall.errors import ConfigError
from footfall.kiosk.app import load_catalogs as kiosk_catalogs
from footfall.server import reports
from footfall.server.web.i18n import catalog as web_catalog
from tests.conftest import ROOT


def test_the_web_the_reports_and_the_kiosk_get_their_catalogs_from_the_one_loader():
    for lang in i18n.LANGUAGES:
        assert web_catalog(lang) is i18n.load_catalog(ROOT / "server" / "i18n", lang, "level.")
        assert reports.labels(lang) is i18n.load_catalog(ROOT / "server" / "i18n", lang)
        assert kiosk_catalogs()[lang] is i18n.load_catalog(ROOT / "kiosk" / "i18n", lang, "level_")
    assert reports.labels("fr") is reports.labels("zh-CN")  # an unknown language: Chinese


def test_no_other_module_reads_a_catalog_file():
    for path in [*(ROOT / "server").rglob("*.py"), *(ROOT / "kiosk").rglob("*.py")]:
        source = path.read_text()
        assert not re.search(r"\{lang[^}]*\}\.json", source), (
            f"{path.relative_to(ROOT)} reads a catalog itself"
        )


def test_the_room_level_words_come_with_every_catalog():
    assert i18n.load_catalog(ROOT / "kiosk" / "i18n", "zh-CN", "level_")["level_full"] == "已满"
    assert web_catalog("en")["level.busy"] == "Busy"


def test_a_damaged_or_missing_catalog_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "zh-CN.json").write_text('{"a": "甲",', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"zh-CN\.json: not a valid JSON message catalog"):
        i18n.load_catalog(tmp_path, "zh-CN")
    (tmp_path / "en.json").write_text('{"a": 1}')
    with pytest.raises(ConfigError, match=r"en\.json: a message catalog must be one JSON object of text"):
        i18n.load_catalog(tmp_path, "en")
    with pytest.raises(ConfigError, match=r"zh-CN\.json: the zh-CN message catalog is missing"):
        i18n.load_catalog(tmp_path / "nowhere", "zh-CN")
