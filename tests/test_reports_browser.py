"""Report and schedule pages in real Chromium, with two months of the simulated center; screenshots in
tests/artifacts/reports/ (Chinese must render: CJK fonts are installed by .ci/run)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from footfall.config import load_toml
from footfall.server.reports import report, rollup_pending
from footfall.server.schedule import create_item
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import add_user
from footfall.site import site_from_dict
from tests.conftest import ARTIFACTS, EXAMPLE_SITE
from tests.yearsim import YEAR, deliveries, feed, generate

pytestmark = pytest.mark.browser
NOW = dt.datetime(YEAR, 3, 1, 2, 0, tzinfo=dt.UTC)
SHOTS = ARTIFACTS / "reports"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    loaded = site_from_dict(load_toml(EXAMPLE_SITE), str(EXAMPLE_SITE))
    site = dataclasses.replace(
        loaded, server={**loaded.server, "data_dir": str(tmp_path_factory.mktemp("data"))}
    )
    year = generate(site)
    store = SqliteStore(site.db_path)
    for item in year.items:
        create_item(store, site, item, NOW)
    feed(site, store, [(t, m) for t, m in deliveries(year) if t < NOW - dt.timedelta(hours=10)])
    rollup_pending(site, store, NOW)
    add_user(store, "manager", "manager-password", "staff")
    app = create_app(site, store, None, {"FOOTFALL_NOW": lambda: NOW})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", site, store
    server.shutdown()


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    base = served[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "manager")
        page.fill("input[name=password]", "manager-password")
        page.click("button[type=submit]")
        yield page
        browser.close()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_monthly_report_renders_its_figures_and_charts_and_prints(served, page):
    base, site, store = served
    rep = report(site, store, "monthly", dt.date(YEAR, 1, 1), NOW)
    page.goto(f"{base}/reports/monthly?month={YEAR}-01")
    assert page.text_content("#h-visits") == str(rep["headline"]["visits"])
    assert page.text_content("#h-average") == str(rep["headline"]["average_daily_visits"])
    assert page.text_content("#h-classes") == str(rep["headline"]["classes_held"])
    assert page.locator("svg.chart").count() == 4
    assert page.locator("svg.chart rect").count() > 100
    assert "日均服务人次" in page.text_content("main") and "党建书吧" in page.text_content("main")
    overflow = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    assert not overflow
    shot(page, "monthly-zh")
    page.emulate_media(media="print")
    assert page.locator(".report-actions").is_hidden()
    shot(page, "monthly-print")
    page.emulate_media(media="screen")


def test_annual_daily_weekly_and_english(served, page):
    base, site, store = served
    page.goto(f"{base}/reports/annual?year={YEAR}")
    rep = report(site, store, "annual", dt.date(YEAR, 1, 1), NOW)
    assert page.text_content("#h-visits") == str(rep["headline"]["visits"])
    shot(page, "annual-zh")
    page.goto(f"{base}/reports/daily?date={YEAR}-02-15&lang=en")
    assert "Average daily visits" in page.text_content("main")
    shot(page, "daily-en")
    page.goto(f"{base}/reports/weekly?date={YEAR}-02-12&lang=zh-CN")
    page.click("text=上一期")
    assert "W06" in page.text_content("h1")
    shot(page, "weekly-zh")


def test_schedule_page_adds_an_item(served, page):
    base, _site, store = served
    page.goto(f"{base}/schedule?from={YEAR}-03-01")
    page.fill("input[name=title]", "重阳节茶话会")
    page.select_option("select[name=kind]", "themed")
    page.select_option("select[name=room]", "multi-purpose")
    page.fill("input[name=date]", f"{YEAR}-03-01")
    page.fill("input[name=start]", "15:00")
    page.fill("input[name=end]", "16:30")
    page.click("button.btn-primary")
    assert "重阳节茶话会" in page.text_content("main")
    assert store.count("schedule", "title=?", ("重阳节茶话会",)) == 1
    shot(page, "schedule-zh")
