"""The staff dashboard's layout in real headless Chromium, on the reference center's nine rooms with counts fed
through the real ingest code: at 1366x768 every room's name and count is on screen without scrolling, fullest
first, corrections behind a per-room menu, an over-capacity room flagged in words, device labels at 18 px or more;
at 390x844 (a phone) the page is no wider than the screen; axe-core finds nothing serious.

Screenshots: tests/artifacts/dashboard/desktop-zh.png, desktop-en.png, menu.png, phone-zh.png.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from werkzeug.serving import make_server

from footfall import topics
from footfall.messages import Crossing
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import add_user
from tests.browser import launch_chromium
from tests.conftest import ARTIFACTS, example_site
from tests.test_kiosk_browser import axe_violations

pytestmark = pytest.mark.browser
NOW = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)  # 11:00 in Beijing
SHOTS = ARTIFACTS / "dashboard"
# People who went from the hall into each room (the rest of the 287 who came in stay in the hall: 85 / 80).
INTO = {"book-bar": 38, "classroom": 50, "counselling": 7, "culture-sports": 12, "meeting": 20,
        "parent-child": 25, "multi-purpose": 50}  # fmt: skip
ARRIVED = 287
# Fullest first: full (7/6, 85/80, 50/50), then busy (38/40, 25/30, 50/60: a tie keeps the site file's order),
# then the rest, each by share of capacity.
EXPECTED_ORDER = ["counselling", "hall", "classroom", "book-bar", "parent-child", "multi-purpose", "meeting",
                  "culture-sports", "e-learning"]  # fmt: skip


def crossings(site, device: str, people: int, minutes_ago: int) -> list[Incoming]:
    """`people` going in through a device's door, in crossings of at most 10 (a crossing counts 1 to 20)."""
    out = []
    for seq, start in enumerate(range(0, people, 10)):
        ts = NOW - dt.timedelta(minutes=minutes_ago) + dt.timedelta(seconds=seq)
        event = Crossing(id=f"{device}-{seq}", seq=seq, ts=ts, direction="in", count=min(10, people - start))
        out.append(Incoming(topics.device_event(site.id, device, site.prefix), event.encode(), qos=1))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    site = example_site(tmp_path_factory.mktemp("data"))
    store = SqliteStore(site.db_path)
    ingestor = Ingestor(site, store)
    ingestor.process(crossings(site, "door-main", ARRIVED, 60), NOW)
    for n, (room, people) in enumerate(INTO.items()):
        ingestor.process(crossings(site, f"door-{room}", people, 30 - n), NOW)
    add_user(store, "duty", "front-desk-2026", "staff")
    app = create_app(site, store, None, {"FOOTFALL_NOW": lambda: NOW})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", site, app
    server.shutdown()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


def open_dashboard(chromium, base: str, width: int, height: int, lang: str = "zh-CN", touch: bool = False):
    # bypass_csp: axe-core is injected as an inline script, which the pages' CSP (rightly) refuses.
    context = chromium.new_context(
        viewport={"width": width, "height": height}, has_touch=touch, bypass_csp=True
    )
    page = context.new_page()
    page.goto(f"{base}/login?lang={lang}")
    page.fill("#username", "duty")
    page.fill("#password", "front-desk-2026")
    page.click("#login-submit")
    page.wait_for_url(f"{base}/")
    page.locator("#live-status[data-state=connected]").wait_for()
    page.mouse.move(0, 0)
    return page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


SCROLL = "() => [document.scrollingElement.scrollWidth, document.scrollingElement.scrollHeight]"
IN_VIEW = """() => [...document.querySelectorAll('.room-card')].map((card) => {
  const box = (sel) => card.querySelector(sel).getBoundingClientRect();
  const inside = (r) => r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
  return [card.dataset.room, inside(box('.room-name')) && inside(box('.occ-now'))];
})"""
SMALLEST_TEXT = """(sel) => Math.min(...[...document.querySelectorAll(sel)].flatMap((root) => [root, ...root.querySelectorAll('*')])
  .filter((el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
  .map((el) => parseFloat(getComputedStyle(el).fontSize)))"""


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_room_fits_one_1366x768_screen_fullest_first(served, chromium, lang):
    base, _site, _app = served
    page = open_dashboard(chromium, base, 1366, 768, lang)
    width, height = page.evaluate(SCROLL)
    shot(page, f"desktop-{lang}")
    assert width <= 1366 and height <= 768, f"the page scrolls: {width}x{height}"
    rooms = page.evaluate(IN_VIEW)
    assert [room for room, _ in rooms] == EXPECTED_ORDER
    assert all(visible for _, visible in rooms), rooms
    assert page.locator(".device-table tbody tr").count() == 10
    assert page.locator(".device-id").count() == 0  # every device told apart by its place and kind
    if (
        lang == "en"
    ):  # the longer English labels do not fit beside the rooms: the list scrolls, the page does not
        assert page.evaluate("(d => d.scrollHeight > d.clientHeight)(document.querySelector('.devices'))")
    assert page.evaluate(SMALLEST_TEXT, ".devices") >= 18
    assert page.evaluate(SMALLEST_TEXT, "main") >= 18
    assert page.evaluate("document.fonts.check('18px \"Noto Sans CJK SC\"', '服务大厅')")
    assert axe_violations(page) == []
    page.context.close()


def test_over_capacity_room_is_flagged_in_words(served, chromium):
    base, _site, _app = served
    page = open_dashboard(chromium, base, 1366, 768)
    assert page.text_content("#over-hall") == "超员 5 人"
    assert page.text_content("#over-counselling") == "超员 1 人"
    assert page.locator("#over-classroom").is_hidden()  # 50 / 50 is full, not over
    assert page.text_content("#level-hall") == "已满"
    assert page.locator(".over-flag:visible").count() == 2
    page.context.close()


def test_corrections_are_in_a_menu_and_a_correction_resorts_the_rooms(served, chromium):
    from playwright.sync_api import expect

    base, _site, _app = served
    page = open_dashboard(chromium, base, 1366, 768)
    assert page.locator("[data-adjust]:visible").count() == 0  # no correction button on the cards
    menu_button = page.locator('[data-menu="e-learning"]')
    expect(menu_button).to_have_attribute("aria-label", "电教室：更多操作")
    menu_button.click()
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    adjust = page.locator('[data-adjust="e-learning"]')
    expect(adjust).to_be_visible()
    expect(adjust).to_be_focused()
    shot(page, "menu")
    assert axe_violations(page) == []
    page.keyboard.press("Escape")
    expect(adjust).to_be_hidden()
    expect(menu_button).to_be_focused()

    menu_button.focus()
    page.keyboard.press("Enter")  # the keyboard opens it too
    expect(adjust).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#adjust-dialog")).to_be_visible()
    page.fill("#adjust-occupancy", "33")
    page.fill("#adjust-reason", "人工清点")
    page.click("#adjust-save")
    expect(page.locator("#adjust-dialog")).to_be_hidden()
    expect(page.locator("#over-e-learning")).to_have_text("超员 3 人")
    page.mouse.click(1360, 760)  # off the grid (pointer and focus): the cards may move now
    cards = page.locator(".room-card")
    expect(cards.nth(1)).to_have_attribute("data-room", "e-learning")  # 7/6, then 33/30, then 85/80
    order = page.eval_on_selector_all(".room-card", "cards => cards.map((c) => c.dataset.room)")
    assert order[:3] == ["counselling", "e-learning", "hall"], order

    # A colleague's correction arrives while this staff member's pointer rests on the grid: nothing moves under it
    # until the pointer leaves.
    page.locator(".room-card").last.hover()
    page.evaluate(ADJUST, ["culture-sports", 48])
    expect(page.locator("#over-culture-sports")).to_have_text(
        "超员 8 人"
    )  # applied, and sorted (or not) at once
    assert page.locator(".room-card").last.get_attribute("data-room") == "culture-sports"
    page.mouse.click(1360, 760)
    expect(cards.first).to_have_attribute("data-room", "culture-sports")  # 48/40 is now the fullest
    page.context.close()


ADJUST = """([room, occupancy]) => fetch('/api/v1/rooms/' + room + '/adjust', {method: 'POST',
  headers: {'Content-Type': 'application/json',
            'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
  body: JSON.stringify({occupancy, reason: 'counted by a colleague'})}).then((r) => r.status)"""


def test_phone_layout_is_no_wider_than_the_screen(served, chromium):
    base, _site, _app = served
    page = open_dashboard(chromium, base, 390, 844, touch=True)
    width, height = page.evaluate(SCROLL)
    shot(page, "phone-zh")
    assert width <= 390, f"{width} px wide on a 390 px phone"
    header = page.evaluate("document.querySelector('.topbar').getBoundingClientRect().height")
    assert header <= 130, header
    assert page.evaluate(SMALLEST_TEXT, "main") >= 18
    page.tap('[data-menu="hall"]')
    assert page.locator('[data-adjust="hall"]').is_visible()
    box = page.locator('[data-adjust="hall"]').bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.tap("h2#rooms-title")  # a tap elsewhere closes the menu
    assert page.locator('[data-adjust="hall"]').is_hidden()
    assert axe_violations(page) == []
    page.context.close()


def test_device_ids_show_only_where_place_and_kind_do_not_tell_devices_apart():
    from footfall.server.web.dashboard import _ids_to_show

    devices = [{"id": "door-a", "kind": "counter"}, {"id": "door-b", "kind": "counter"},
               {"id": "kiosk-1", "kind": "kiosk"}, {"id": "spare", "kind": "counter"}]  # fmt: skip
    places = {"door-a": "服务大厅", "door-b": "服务大厅", "kiosk-1": "服务大厅"}
    assert _ids_to_show(devices, places) == {"door-a", "door-b", "spare"}
