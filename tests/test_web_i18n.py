"""Message catalogs: same keys in every language, every key the pages use exists; Chinese by default."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import string
from pathlib import Path

import pytest

from footfall.config import load_toml
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import add_user, create_token
from footfall.server.web.i18n import catalog
from footfall.site import site_from_dict
from tests.conftest import EXAMPLE_SITE, example_site

SERVER = Path(__file__).resolve().parents[1] / "server"
# As loaded: the files plus the level words shared with the kiosk (footfall/levels.py).
CATALOGS = {path.stem: catalog(path.stem) for path in (SERVER / "i18n").glob("*.json")}
NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogs_have_the_same_keys():
    assert set(CATALOGS) == {"zh-CN", "en"}
    zh, en = CATALOGS["zh-CN"], CATALOGS["en"]
    assert sorted(zh) == sorted(en)
    for key in zh:
        assert zh[key].strip() and en[key].strip(), key
        assert placeholders(zh[key]) == placeholders(en[key]), key


def test_every_key_used_by_pages_and_scripts_exists():
    used: set[str] = set()
    for path in (SERVER / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*['"]([a-z0-9_.\-]+)['"]""", path.read_text(encoding="utf-8")))
    for path in (SERVER / "static").glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*"([a-z0-9_.\-]+)"\s*[,)]""", path.read_text(encoding="utf-8")))
    # Keys built from values: levels, device states and kinds, languages, live states.
    used |= {f"level.{x}" for x in ("ok", "busy", "full")}
    used |= {f"devices.state.{x}" for x in ("online", "offline", "unknown")}
    used |= {f"devices.kind.{x}" for x in ("counter", "kiosk")}
    used |= {f"live.{x}" for x in ("connected", "connecting", "disconnected")}
    used |= {"lang.zh-CN", "lang.en", "login.failed", "login.too_many"}
    used = {key for key in used if not key.endswith(".")}  # 'level.' ~ r.level: listed above
    assert len(used) > 20, "too few keys found: the pattern is wrong"
    assert used <= set(CATALOGS["zh-CN"]), used - set(CATALOGS["zh-CN"])


def make_site(tmp_path, **server):
    return example_site(tmp_path / "data", **server)


@pytest.fixture
def site(tmp_path):
    return make_site(tmp_path)


@pytest.fixture
def client(site):
    store = SqliteStore(site.db_path)
    add_user(store, "staff", "password-1", "staff")
    app = create_app(site, store, None, {"TESTING": True, "CSRF_ENABLED": False, "FOOTFALL_NOW": lambda: NOW})
    client = app.test_client()
    client.store = store
    return client


def test_chinese_by_default(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "工作人员登录" in page and "用户名" in page
    client.post("/login", data={"username": "staff", "password": "password-1"})
    page = client.get("/").get_data(as_text=True)
    assert "服务大厅" in page and "今日到访" in page and "校正人数" in page and "有空位" in page
    catalog = re.search(
        r'<script type="application/json" id="i18n-catalog">(.*?)</script>', page, re.S
    ).group(1)
    assert json.loads(catalog)["level.full"] == "已满"


def test_english_switch_is_remembered(client):
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page and "Staff login" in page and "工作人员登录" not in page
    client.post("/login", data={"username": "staff", "password": "password-1"})
    page = client.get("/").get_data(as_text=True)  # no ?lang: the session remembers
    assert "Service hall" in page and "Party-building book bar" in page and "Visits today" in page
    assert "Correct count" in page and "服务大厅" not in page
    catalog = re.search(
        r'<script type="application/json" id="i18n-catalog">(.*?)</script>', page, re.S
    ).group(1)
    assert json.loads(catalog)["level.full"] == "Full"
    assert "今日到访" in client.get("/?lang=zh-CN").get_data(as_text=True)
    assert client.get("/?lang=fr").status_code == 200  # an unknown language is ignored


def test_room_name_falls_back_to_chinese(tmp_path):
    data = load_toml(EXAMPLE_SITE)
    del data["rooms"][1]["name_en"]
    site = site_from_dict(data, str(EXAMPLE_SITE))
    site = dataclasses.replace(site, server=dataclasses.replace(site.server, data_dir=str(tmp_path / "data")))
    store = SqliteStore(site.db_path)
    token = create_token(store, "viewer", "tv")
    client = create_app(site, store, None, {"TESTING": True, "CSRF_ENABLED": False}).test_client()
    page = client.get(f"/screen?token={token}&lang=en").get_data(as_text=True)
    assert "Service hall" in page and "党建书吧" in page
    # The language switch keeps the screen's token.
    assert re.search(r'href="/screen\?token=[^"]+&amp;lang=zh-CN"', page)


def test_site_language_english(tmp_path):
    site = make_site(tmp_path, language="en")
    client = create_app(
        site, SqliteStore(site.db_path), None, {"TESTING": True, "CSRF_ENABLED": False}
    ).test_client()
    assert "Staff login" in client.get("/login").get_data(as_text=True)
