"""The lobby big screen (/screen, 1920x1080, opened with a viewer token) in real headless Chromium: today's sessions
with their room (and floor) and places left, counted from real kiosk check-ins fed through the ingest code; a
session whose room is full, or with no places left, says so in words with a square mark; a room that fills up
while the screen is open marks its sessions at once; everything fits the TV without scrolling or overlapping.

Screenshots: tests/artifacts/screen/lobby-zh.png, lobby-en.png, lobby-room-full.png.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.request

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from footfall import topics
from footfall.messages import Checkin
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.schedule import create_item
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import create_token
from footfall.server.web.lobby import floor_words, people_by_item, zh_number
from tests.conftest import ARTIFACTS, example_site
from tests.test_dashboard_layout import NOW, chromium, crossings  # noqa: F401 - fixture
from tests.test_kiosk_browser import axe_violations

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "screen"
DAY = "2026-03-02"  # NOW is 11:00 in Beijing on this day
ITEMS = [
    {"id": "calligraphy", "title": "书法课", "title_en": "Calligraphy", "kind": "class", "room": "classroom",
     "date": DAY, "start": "09:00", "end": "10:00", "capacity": 20},
    {"id": "smartphones", "title": "老年人智能手机课", "title_en": "Smartphones for seniors", "kind": "class",
     "room": "e-learning", "date": DAY, "start": "10:30", "end": "12:00", "capacity": 30},
    {"id": "paper-cut", "title": "亲子剪纸", "title_en": "Paper cutting for families", "kind": "workshop",
     "room": "parent-child", "date": DAY, "start": "14:00", "end": "15:30", "capacity": 10},
    {"id": "tai-chi", "title": "太极拳", "title_en": "Tai chi", "kind": "activity", "room": "culture-sports",
     "date": DAY, "start": "15:00", "end": "16:00", "capacity": 40},
] + [
    {"id": f"evening-{n}", "title": title, "kind": "themed", "room": room, "date": DAY, "start": f"{17 + n}:00",
     "end": f"{17 + n}:45", "capacity": 40}
    for n, (title, room) in enumerate([("党史学习分享会", "meeting"), ("社区合唱团排练", "multi-purpose"),
                                       ("健康讲座：冬季养生", "multi-purpose"), ("志愿者例会", "meeting"),
                                       ("电影放映", "multi-purpose")])
]  # fmt: skip
# Who checked in at the hall kiosk for what: (item, adults, children).
CHECKINS = [
    ("smartphones", 3, 0),
    ("smartphones", 1, 0),
    ("paper-cut", 2, 3),
    ("paper-cut", 2, 3),
    (None, 2, 0),
]


def checkin_messages(site, checkins, first_seq: int = 0) -> list[Incoming]:
    out = []
    for seq, (item, adults, children) in enumerate(checkins, start=first_seq):
        ts = NOW - dt.timedelta(minutes=20 - seq)
        event = Checkin(id=f"kiosk-hall-{seq}", seq=seq, ts=ts, purpose="activity" if item else "reading",
                        adults=adults, children=children, activity=item)  # fmt: skip
        out.append(Incoming(topics.device_event(site.id, "kiosk-hall", site.prefix), event.encode(), qos=1))
    return out


@pytest.fixture(scope="module")
def lobby(tmp_path_factory):
    site = example_site(tmp_path_factory.mktemp("data"))
    store = SqliteStore(site.db_path)
    for item in ITEMS:
        create_item(store, site, item, NOW)
    ingestor = Ingestor(site, store)
    ingestor.process(crossings(site, "door-main", 60, 60), NOW)
    ingestor.process(crossings(site, "door-culture-sports", 40, 30), NOW)  # 40 / 40: full
    ingestor.process(crossings(site, "door-e-learning", 6, 29), NOW)  # 6 / 30: quiet
    ingestor.process(checkin_messages(site, CHECKINS), NOW)
    viewer = create_token(store, "viewer", "lobby TV")
    staff = create_token(store, "staff", "front desk")
    app = create_app(site, store, None, {"FOOTFALL_NOW": lambda: NOW})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def check_in(item: str, adults: int) -> None:
        ingestor.process(checkin_messages(site, [(item, adults, 0)], first_seq=100), NOW)

    yield f"http://127.0.0.1:{server.server_port}", viewer, staff, check_in
    server.shutdown()


def open_screen(chromium, base: str, token: str, lang: str = "zh-CN"):  # noqa: F811
    context = chromium.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True)  # axe is inline
    page = context.new_page()
    page.goto(f"{base}/screen?token={token}&lang={lang}")
    page.locator("#live-status[data-state=connected]").wait_for()
    return page


def adjust(base: str, token: str, room: str, occupancy: int) -> None:
    body = json.dumps({"occupancy": occupancy, "reason": "counted by hand"}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/rooms/{room}/adjust",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def session_texts(page) -> dict[str, dict[str, str]]:
    return page.eval_on_selector_all(
        ".session[data-session]",
        """rows => Object.fromEntries(rows.map((r) => [r.dataset.session, {
             where: r.querySelector('.session-where').textContent.trim(),
             places: r.querySelector('.session-places').textContent.trim(),
             full: r.classList.contains('is-full')}]))""",
    )


FITS = """() => {
  const W = innerWidth, H = innerHeight, problems = [];
  for (const el of document.querySelectorAll('main *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    if (r.right > W + 0.5 || r.bottom > H + 0.5) problems.push('off screen: ' + el.className);
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) problems.push('overflows: ' + el.className);
  }
  const rows = [...document.querySelectorAll('.session')].map((r) => r.getBoundingClientRect());
  rows.forEach((a, i) => rows.slice(i + 1).forEach((b) => { if (a.bottom > b.top + 0.5) problems.push('rows overlap'); }));
  const sizes = [...document.querySelectorAll('main *')].filter((el) =>
    [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())).map((el) => parseFloat(getComputedStyle(el).fontSize));
  return {problems, minFont: Math.min(...sizes), scroll: document.scrollingElement.scrollHeight};
}"""


def test_sessions_show_their_room_and_places_left_and_full_ones_stand_out(lobby, chromium):  # noqa: F811
    base, viewer, _staff, _check_in = lobby
    page = open_screen(chromium, base, viewer)
    rows = session_texts(page)
    # Running and coming sessions first, the ended one last; 7 of the 9 fit, the rest are counted.
    assert list(rows) == [
        "smartphones",
        "paper-cut",
        "tai-chi",
        "evening-0",
        "evening-1",
        "evening-2",
        "evening-3",
    ]
    assert page.text_content(".session-more") == "另有 2 项，请到服务台查看"
    assert rows["smartphones"] == {
        "where": "二楼电教室",
        "places": "余 26 位",
        "full": False,
    }  # 30 - 4 people
    assert rows["paper-cut"] == {"where": "二楼亲子坊", "places": "名额已满", "full": True}  # 10 checked in
    assert rows["tai-chi"] == {
        "where": "一楼文体活动室",
        "places": "场地已满",
        "full": True,
    }  # the room is 40 / 40
    assert rows["evening-0"] == {"where": "三楼三会一课会议室", "places": "余 40 位", "full": False}
    assert page.text_content('[data-session="smartphones"] .session-state') == "进行中"
    assert page.locator('[data-session="tai-chi"] .session-state').count() == 0  # not started: no state
    # Full is said by a square mark and words, not by colour alone.
    mark = page.eval_on_selector(
        '[data-session="tai-chi"] .session-places', "el => getComputedStyle(el, '::before').content"
    )
    assert mark == '"■ "'
    fit = page.evaluate(FITS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "lobby-zh.png"))
    assert fit["problems"] == [] and fit["scroll"] <= 1080, fit
    assert fit["minFont"] >= 24, fit
    assert page.evaluate("document.fonts.check('24px \"Noto Sans CJK SC\"', '太极拳')")
    assert axe_violations(page) == []
    page.context.close()


def test_a_room_that_fills_up_marks_its_sessions_at_once(lobby, chromium):  # noqa: F811
    base, viewer, staff, check_in = lobby
    page = open_screen(chromium, base, viewer)
    row = page.locator('[data-session="smartphones"]')
    expect(row.locator(".session-places")).to_have_text("余 26 位")
    adjust(base, staff, "e-learning", 30)  # the e-learning room is full now
    expect(row.locator(".session-places")).to_have_text("场地已满")
    expect(row).to_have_class("session state-on is-full")
    expect(page.locator("#room-e-learning")).to_have_class("screen-room level-full")
    page.screenshot(path=str(SHOTS / "lobby-room-full.png"))
    adjust(base, staff, "e-learning", 6)
    expect(row.locator(".session-places")).to_have_text("余 26 位")
    expect(row).to_have_class("session state-on")
    # Two more check in for the class at the kiosk: the list the screen takes again from the server says so.
    check_in("smartphones", 2)
    page.evaluate("window.Footfall.refreshSessions()")
    expect(row.locator(".session-places")).to_have_text("余 24 位")
    page.context.close()


def test_english_lobby_fits_too(lobby, chromium):  # noqa: F811
    base, viewer, _staff, _check_in = lobby
    page = open_screen(chromium, base, viewer, "en")
    rows = session_texts(page)
    assert rows["smartphones"]["where"] == "E-learning room, floor 2"
    assert rows["evening-0"]["places"] == "40 places left"
    assert rows["tai-chi"]["places"] == "Room full"
    page.screenshot(path=str(SHOTS / "lobby-en.png"))
    fit = page.evaluate(FITS)
    assert fit["problems"] == [] and fit["scroll"] <= 1080, fit
    assert fit["minFont"] >= 24, fit
    page.context.close()


def test_floor_words_and_people_per_item():
    assert [zh_number(n) for n in (1, 2, 10, 12, 21)] == ["一", "二", "十", "十二", "二十一"]
    assert floor_words(2, "zh-CN") == "二楼" and floor_words(-1, "zh-CN") == "地下一层"
    assert floor_words(3, "en") == "floor 3" and floor_words(None, "en") == ""
    rows = [{"activity": "a", "adults": 2, "children": 1}, {"activity": None, "adults": 5}, {"activity": "a"}]
    assert people_by_item(rows) == {"a": 3}
