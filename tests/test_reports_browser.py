"""Report and schedule pages in real Chromium, with two months of the simulated center; screenshots in
tests/artifacts/reports/ (Chinese must render: CJK fonts are installed by .ci/run)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from werkzeug.serving import make_server

from footfall.server.reports import report, rollup_pending
from footfall.server.schedule import create_item
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import add_user
from tests.browser import launch_chromium
from tests.conftest import ARTIFACTS, example_site
from tests.yearsim import YEAR, deliveries, feed, generate

pytestmark = pytest.mark.browser
NOW = dt.datetime(YEAR, 3, 1, 2, 0, tzinfo=dt.UTC)
SHOTS = ARTIFACTS / "reports"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    site = example_site(tmp_path_factory.mktemp("data"))
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
        browser = launch_chromium(p)
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
    page.click(".schedule-form button.btn-primary")
    from playwright.sync_api import expect

    expect(page.locator("main")).to_contain_text("重阳节茶话会")  # after the redirect has loaded
    assert store.count("schedule", "title=?", ("重阳节茶话会",)) == 1
    shot(page, "schedule-zh")


# --- the picker, the annual months, phones (#13) -----------------------------------------------------------


@pytest.fixture(scope="module")
def contexts(served, page):
    """New contexts in the module's browser, logged in as the manager: desktop by keyboard, or a 390 px phone by
    touch. CSP is bypassed only so that axe-core, an inline script, can be injected."""
    base = served[0]
    browser = page.context.browser

    def open_page(phone: bool = False):
        size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        context = browser.new_context(viewport=size, has_touch=phone, locale="zh-CN", bypass_csp=True)
        tab = context.new_page()
        tab.goto(f"{base}/login")
        tab.fill("input[name=username]", "manager")
        tab.fill("input[name=password]", "manager-password")
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{base}/")
        return tab

    return open_page


def test_annual_report_has_twelve_months_adding_up_to_the_year(served, contexts):
    base, site, store = served
    page = contexts()
    page.goto(f"{base}/reports/annual?year={YEAR}")
    rep = report(site, store, "annual", dt.date(YEAR, 1, 1), NOW)
    rows = page.locator("#months tbody tr")
    assert rows.count() == 12
    assert rows.locator("th").all_text_contents() == [f"{m}月" for m in range(1, 13)]
    visits = [int(v) for v in page.locator("#months tbody td:nth-of-type(1)").all_text_contents()]
    assert sum(visits) == rep["headline"]["visits"] == int(page.text_content("#months-visits"))
    by_month = [sum(d["visits"] for d in rep["days"] if int(d["date"][5:7]) == m) for m in range(1, 13)]
    assert visits == by_month and visits[0] > 0 and visits[11] == 0  # Jan and Feb counted, Dec not yet
    for column, key in ((2, "days_open"), (4, "checkins"), (5, "people")):
        cells = page.locator(f"#months tbody td:nth-of-type({column})").all_text_contents()
        assert sum(int(c) for c in cells) == rep["headline"][key], key
    assert page.locator("#months-title ~ .chart-scroll svg rect").count() == 12  # twelve bars, not 365
    from tests.test_kiosk_browser import axe_violations

    assert axe_violations(page) == []
    shot(page, "annual-months")
    page.context.close()


def test_picker_works_by_keyboard(served, contexts):
    base = served[0]
    page = contexts()
    # The arrow keys step the field's focused part (which part comes first depends on the browser's locale); Enter
    # shows the report for the date now in the field, and only then does the page change.
    page.goto(f"{base}/reports/daily?date={YEAR}-02-15")
    page.focus("#period-input")
    page.keyboard.press("ArrowDown")
    picked = page.input_value("#period-input")
    assert picked != f"{YEAR}-02-15" and page.url.endswith(f"date={YEAR}-02-15")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/reports/daily?date={picked}")
    assert picked in page.text_content(".period-range")

    page.goto(f"{base}/reports/monthly?month={YEAR}-02")
    page.focus("#period-input")
    page.keyboard.press("ArrowDown")
    assert page.input_value("#period-input") == f"{YEAR}-01"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/reports/monthly?month={YEAR}-01")

    page.goto(f"{base}/reports/annual?year={YEAR}")
    page.focus("#period-input")
    page.keyboard.press("ArrowDown")  # the year before
    assert page.url.endswith(f"year={YEAR}")  # nothing changes until the button is pressed
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "period-go"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/reports/annual?year={YEAR - 1}")
    page.context.close()


def test_picker_works_by_touch_and_reports_read_on_a_phone(served, contexts):
    from tests.test_kiosk_browser import axe_violations

    base = served[0]
    page = contexts(phone=True)
    page.goto(f"{base}/reports/monthly?month={YEAR}-02")
    choice = page.get_by_role("link", name="1月", exact=True)
    box = choice.bounding_box()
    assert box["width"] >= 48 and box["height"] >= 48
    choice.tap()
    page.wait_for_url(f"**/reports/monthly?month={YEAR}-01")
    assert page.locator('.month-choice[aria-current="page"]').text_content() == "1月"

    page.goto(f"{base}/reports/annual?year={YEAR}")
    page.tap("#period-input")
    page.select_option("#period-input", str(YEAR - 1))  # what the phone's own list does after the tap
    page.tap("#period-go")
    page.wait_for_url(f"**/reports/annual?year={YEAR - 1}")

    page.goto(f"{base}/reports/daily?date={YEAR}-02-15")
    page.tap("#period-input")
    page.fill("#period-input", f"{YEAR}-01-20")  # what the phone's own calendar does after the tap
    page.tap("#period-go")
    page.wait_for_url(f"**/reports/daily?date={YEAR}-01-20")

    for path in (f"monthly?month={YEAR}-01", f"annual?year={YEAR}"):
        page.goto(f"{base}/reports/{path}")
        shot(page, "phone-" + path.split("?")[0])
        assert (
            page.evaluate("document.scrollingElement.scrollWidth") <= 390
        )  # the page itself never scrolls sideways
        # Room names stay on one line, chart text stays as drawn (14 px and up), nothing under 18 px outside charts.
        heights = page.eval_on_selector_all(
            ".report-table tbody th", "ths => ths.map((th) => th.getBoundingClientRect().height)"
        )
        assert max(heights) < 50, heights
        chart_text = page.eval_on_selector_all(
            "svg.chart text", "ts => Math.min(...ts.map((t) => t.getBoundingClientRect().height))"
        )
        assert chart_text >= 14, chart_text
        smallest = page.evaluate(
            """() => Math.min(...[...document.querySelectorAll('main *')].filter((el) => !el.closest('svg')
                 && [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
                 .map((el) => parseFloat(getComputedStyle(el).fontSize)))"""
        )
        assert smallest >= 18, smallest
        assert axe_violations(page) == []
    page.context.close()


def test_headers_stand_over_their_numbers_and_over_capacity_is_flagged(served, contexts):
    base, site, store = served
    page = contexts()
    page.goto(f"{base}/reports/monthly?month={YEAR}-01")
    aligned = page.evaluate(
        """() => [...document.querySelectorAll('.report-table')].flatMap((table) => {
             const heads = [...table.querySelectorAll('thead th')];
             const cells = [...(table.querySelector('tbody tr') || {children: []}).children];
             return heads.map((h, i) => cells[i] ? [getComputedStyle(h).textAlign === getComputedStyle(cells[i]).textAlign
                    || (getComputedStyle(h).textAlign === 'start' && getComputedStyle(cells[i]).textAlign === 'left'),
                    h.textContent.trim()] : [true, '']);
           })"""
    )
    assert all(ok for ok, _ in aligned), [name for ok, name in aligned if not ok]
    rep = report(site, store, "monthly", dt.date(YEAR, 1, 1), NOW)
    # Each January day's own report: on how many days did a room's peak go above its capacity?
    days = [report(site, store, "daily", dt.date(YEAR, 1, d), NOW)["rooms"] for d in range(1, 32)]
    over_days = {
        r["room"]: sum(
            1 for rooms in days for x in rooms if x["room"] == r["room"] and x["peak"] > x["capacity"]
        )
        for r in rep["rooms"]
    }
    expected = {
        r["room"]: f"{over_days[r['room']]} 天超员，最多超 {r['peak'] - r['capacity']} 人"
        for r in rep["rooms"]
        if r["capacity"] and r["peak"] > r["capacity"]
    }
    assert expected and all(over_days[room] > 0 for room in expected)
    assert {r["room"]: r["over_capacity_days"] for r in rep["rooms"]} == over_days
    assert flag_texts(page) == expected
    day = next(d for d in range(1, 32) if any(x["peak"] > x["capacity"] for x in days[d - 1]))
    page.goto(f"{base}/reports/daily?date={YEAR}-01-{day:02d}")
    over = {x["room"]: x["peak"] - x["capacity"] for x in days[day - 1] if x["peak"] > x["capacity"]}
    assert flag_texts(page) == {room: f"超员 {n} 人" for room, n in over.items()}
    page.context.close()


def flag_texts(page) -> dict[str, str]:
    return {
        el.get_attribute("id")[5:]: el.text_content() for el in page.locator(".report-table .over-flag").all()
    }
