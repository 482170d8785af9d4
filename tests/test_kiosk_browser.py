"""The kiosk UI in real headless Chromium at 800x480 (and 1280x800), in Chinese and in English: a full check-in by
taps, a screenshot of every screen under tests/artifacts/kiosk/, and on every screen an audit computed from the
rendered page (touch targets >= 60 px, text >= 24 px, WCAG contrast >= 4.5:1, nothing outside the screen and nothing
spilling out of or cut by its box) plus axe-core (tests/js, `make js`) with no serious or critical violation."""

from __future__ import annotations

import datetime as dt
import json
import threading

import cv2
import numpy as np
import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from footfall.kiosk.app import create_app
from tests.browser import launch_chromium
from tests.conftest import ARTIFACTS, ROOT
from tests.test_kiosk_app import MEMBER, NOW, PIN, make_config, schedule_payload

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "kiosk"
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"

AUDIT_JS = """
() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) out = out.map((v, i) => c[3] * c[i] + (1 - c[3]) * v);
    return out; };
  const visible = (el) => { const s = getComputedStyle(el); const r = el.getBoundingClientRect();
    return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0 && r.height > 0; };
  const overlay = document.querySelector('.overlay.open');
  const roots = overlay ? [overlay, document.querySelector('.bar')] : [document.body];
  const problems = []; let texts = 0, buttons = 0, minFont = 1e9, minContrast = 1e9, minTarget = 1e9;
  const W = window.innerWidth, H = window.innerHeight;
  for (const el of roots.flatMap((r) => [...r.querySelectorAll('*')])) {
    if (!visible(el) || el.closest('script') || el instanceof SVGElement) continue;
    if (!overlay && el.closest('.overlay')) continue;
    const r = el.getBoundingClientRect();
    const label = (el.id || el.className || el.tagName) + ' "' + (el.textContent || '').trim().slice(0, 20) + '"';
    if (el.tagName === 'BUTTON') {
      buttons++; minTarget = Math.min(minTarget, r.width, r.height);
      if (r.width < 60 || r.height < 60) problems.push('target ' + Math.round(r.width) + 'x' + Math.round(r.height) + ' ' + label);
    }
    if (r.right > W + 0.5 || r.bottom > H + 0.5 || r.left < -0.5 || r.top < -0.5) problems.push('outside the screen ' + label);
    // Content wider or taller than its box: text spilling out of a tile, or cut (with or without an ellipsis).
    // (A CJK font's glyphs stand a few px above and below a tight line height: 8 px is less than a line.)
    if (el.clientWidth > 0 && (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 8))
      problems.push('overflows its box ' + el.scrollWidth + 'x' + el.scrollHeight + ' > ' + el.clientWidth + 'x' + el.clientHeight + ' ' + label);
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    texts++;
    const s = getComputedStyle(el); const size = parseFloat(s.fontSize); minFont = Math.min(minFont, size);
    if (size < 24) problems.push('font ' + size + 'px ' + label);
    const fg = parse(s.color); const bg = background(el);
    const fgMixed = fg.slice(0, 3).map((v, i) => fg[3] * v + (1 - fg[3]) * bg[i]);
    const [a, b] = [lum(fgMixed), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); minContrast = Math.min(minContrast, ratio);
    if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ' ' + label);
  }
  return {problems, texts, buttons, minFont, minContrast, minTarget,
          cjk: document.fonts.check('24px "Noto Sans CJK SC"', '签到')};
}
"""

AXE_JS = """
async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.map((n) => n.target.join(' ')).join(', '));
}
"""


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    assert AXE.exists(), f"{AXE} is missing: run `make js` (npm ci --prefix tests/js)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(AXE_JS)


def qr_frame(text: str):
    qr = cv2.QRCodeEncoder.create().encode(text)
    big = cv2.resize(np.pad(qr, 4, constant_values=255), (240, 240), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


# Room states as ingest retains them: a full room on the ground floor, a busy one, and a quiet classroom upstairs.
ROOM_STATES = [
    {"room": "culture-sports", "name": "文体活动室", "name_en": "Culture and sports room", "level": "full",
     "occupancy": 40, "capacity": 40, "floor": 1},
    {"room": "book-bar", "name": "党建书吧", "name_en": "Book bar", "level": "busy", "floor": 1},
    {"room": "classroom", "name": "综合教室", "name_en": "General classroom", "level": "ok",
     "occupancy": 12, "capacity": 50, "floor": 2},
    {"room": "parent-child", "name": "亲子坊", "name_en": "Parent-child workshop room", "level": "ok", "floor": 2},
]  # fmt: skip


@pytest.fixture
def serve(tmp_path):
    """Start the kiosk app on a real threaded HTTP server on 127.0.0.1 (no broker: events stay in the outbox)."""
    running = []

    def start(name: str = "k", **test_config):
        app = create_app(make_config(tmp_path / name), test_config={"now": lambda: NOW, **test_config})
        kiosk = app.extensions["kiosk"]
        kiosk.local.set_schedule(schedule_payload())
        for state in ROOM_STATES:
            payload = json.dumps({"v": 1, **state}, ensure_ascii=False).encode()
            kiosk.local.set_room(state["room"], payload)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append((server, kiosk))
        return f"http://127.0.0.1:{server.server_port}/", kiosk

    yield start
    for server, kiosk in running:
        server.shutdown()
        kiosk.runtime.outbox.close()
        kiosk.local.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def new_page(browser, width=800, height=480):
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=True, device_scale_factor=1
    )
    return context.new_page()


class Screens:
    """Taps through the UI, saving a screenshot of each screen and auditing it (own audit and axe-core)."""

    def __init__(self, page, tag: str):
        self.page, self.tag, self.seen = page, tag, []
        SHOTS.mkdir(parents=True, exist_ok=True)

    def on(self, screen: str, shot: str | None = None):
        expect(self.page.locator("body")).to_have_attribute("data-screen", screen)
        expect(self.page.locator("#btn-lang")).to_be_visible()  # English (or Chinese) one tap away everywhere
        self.check(shot or screen)

    def check(self, name: str, axe: bool = True):
        self.page.evaluate("document.fonts.ready")
        self.page.screenshot(path=str(SHOTS / f"{self.tag}-{len(self.seen):02d}-{name}.png"))
        audit = self.page.evaluate(AUDIT_JS)
        assert audit["problems"] == [], f"{self.tag} {name}: {audit['problems']}"
        assert audit["texts"] > 0 and audit["buttons"] > 0 and audit["cjk"], audit
        if axe:  # (axe-core needs timers: not while a test holds the page's clock still)
            assert axe_violations(self.page) == [], f"{self.tag} {name}"
        self.seen.append((name, audit))

    def tap(self, selector: str):
        self.page.tap(selector)


def hold(page, selector: str, ms: int):
    """Press a finger on an element for `ms` and lift it (real touch events through the DevTools protocol)."""
    box = page.locator(selector).bounding_box()
    point = {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [point]})
    page.wait_for_timeout(ms)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def checkin_by_taps(s: Screens, page, member: str = MEMBER):
    s.on("welcome")
    s.tap("#btn-start")
    s.on("purpose")
    s.tap('[data-purpose="activity"]')
    s.on("people")
    s.tap('[data-count="adults"][data-delta="1"]')
    s.tap('[data-count="children"][data-delta="1"]')
    expect(page.locator("#count-adults")).to_have_text("2")
    expect(page.locator("#count-children")).to_have_text("1")
    s.tap("#btn-people-next")
    s.on("activity")
    s.tap('[data-activity="tai-chi"]')
    s.on("identify")
    s.tap('#screen-identify [data-go="notice"]')
    s.on("notice")
    s.tap("#btn-agree")
    s.on("member")
    for digit in member:
        s.tap(f'#screen-member [data-key="{digit}"]')
    expect(page.locator("#member-display")).to_have_text(member)
    s.check("member-typed")
    s.tap("#btn-member-confirm")


def staff_mode(s: Screens, page):
    """Staff mode: a 2-second press on the centre's name; the PIN; the staff screen; exit."""
    s.tap("#btn-staff")  # a visitor's tap on the name does nothing
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome")
    hold(page, "#btn-staff", 2300)
    s.on("pin", "staff-pin")
    for digit in "1111":
        s.tap(f'#screen-pin [data-key="{digit}"]')
    s.tap("#btn-pin-enter")
    expect(page.locator("#pin-message")).not_to_be_empty()
    s.check("staff-pin-wrong")
    for digit in PIN:
        s.tap(f'#screen-pin [data-key="{digit}"]')
    s.tap("#btn-pin-enter")
    s.on("staff")
    expect(page.locator("#staff-device")).to_contain_text("kiosk-hall")
    s.tap("#btn-staff-exit")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_screen_audited_in_both_languages(serve, browser, lang):
    frames = {"qr": False}
    url, kiosk = serve(frame_source=lambda: qr_frame(f"footfall-member:{MEMBER}") if frames["qr"] else None)
    page = new_page(browser)
    page.goto(url)
    s = Screens(page, "zh" if lang == "zh-CN" else "en")
    if lang == "en":
        s.tap("#btn-lang")
        expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#today-list")).to_contain_text("太极拳" if lang == "zh-CN" else "Tai chi")
    expect(page.locator("#room-list")).to_contain_text("已满" if lang == "zh-CN" else "Full")
    checkin_by_taps(s, page)
    s.on("success")
    zh = lang == "zh-CN"
    expect(page.locator("#success-title")).to_have_text("签到成功！" if zh else "You are checked in!")
    expect(page.locator("#success-where")).to_have_text(
        "请到一楼文体活动室" if zh else "Go to the Culture and sports room, floor 1"
    )
    expect(page.locator("#success-detail")).to_have_text("2 位成人，1 位儿童" if zh else "2 adults, 1 child")
    (event,) = [json.loads(p.payload) for p in kiosk.runtime.outbox.pending(0, 10)]
    assert {k: event[k] for k in ("purpose", "adults", "children", "activity", "member", "room")} == {
        "purpose": "activity",
        "adults": 2,
        "children": 1,
        "activity": "tai-chi",
        "member": MEMBER,
        "room": "culture-sports",
    }
    s.tap("#btn-done")
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome")
    if lang == "en":
        expect(page.locator("#btn-start")).to_have_text("点这里签到")  # the next visitor starts in Chinese
        s.tap("#btn-lang")

    # The same member again, by QR code this time: a friendly "already checked in", not an error.
    s.tap("#btn-start")
    s.tap('[data-purpose="activity"]')
    s.tap("#btn-people-next")
    s.tap('[data-activity="tai-chi"]')
    s.tap('#screen-identify [data-go="notice"]')
    s.tap("#btn-agree")
    s.tap("#btn-scan")
    s.on("scan")
    frames["qr"] = True
    s.on("success", "duplicate")
    expect(page.locator("#success-detail")).to_contain_text("09:30")
    assert kiosk.runtime.outbox.queue == 1
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome", timeout=10_000)
    if lang == "en":
        s.tap("#btn-lang")

    # Call staff, from any screen: a dialog confirms it.
    s.tap("#btn-start")
    s.tap("#btn-help")
    expect(page.locator("#overlay-help")).to_be_visible()
    s.check("help-dialog")
    s.tap('#overlay-help [data-close="overlay-help"]')
    # A failed check-in (the kiosk app answers 500): the error dialog.
    page.route("**/api/checkin", lambda route: route.fulfill(status=500, body="{}"))
    s.tap('[data-purpose="affairs"]')
    s.tap("#btn-people-next")
    s.on("identify", "identify-affairs")
    s.tap("#btn-anonymous")
    expect(page.locator("#overlay-error")).to_be_visible()
    s.check("error-dialog")
    s.tap('#overlay-error [data-close="overlay-error"]')
    page.unroute("**/api/checkin")
    s.tap("#btn-identify-back")
    s.tap('#screen-people [data-go="purpose"]')
    s.tap('#screen-purpose [data-go="welcome"]')
    s.on("welcome", "welcome-again")
    staff_mode(s, page)
    s.on("welcome", "after-staff")
    assert len(s.seen) >= 17


def test_a_quiet_rooms_name_and_floor_are_on_the_list_and_the_success_screen(serve, browser):
    url, _ = serve()
    page = new_page(browser)
    page.goto(url)
    s = Screens(page, "quiet")
    s.tap("#btn-start")
    s.tap('[data-purpose="class"]')
    s.tap("#btn-people-next")
    s.on("activity", "class-list")
    choice = page.locator('[data-activity="calligraphy-am"]')
    expect(choice).to_contain_text("书法课")
    expect(choice.locator(".choice-where")).to_have_text("二楼综合教室")  # level ok: no badge, but the room
    s.tap('[data-activity="calligraphy-am"]')
    s.tap("#btn-anonymous")
    s.on("success", "class-success")
    expect(page.locator("#success-where")).to_have_text("请到二楼综合教室")
    expect(page.locator("#success-detail")).to_have_text("1 位成人")
    s.tap("#btn-lang")
    s.tap("#btn-done")
    s.tap("#btn-lang")
    s.tap("#btn-start")
    s.tap('[data-purpose="class"]')
    s.tap("#btn-people-next")
    expect(choice.locator(".choice-where")).to_have_text("General classroom, floor 2")
    s.check("class-list-en")


def test_member_keypad_keeps_its_layout_and_clears(serve, browser):
    url, _ = serve()
    page = new_page(browser)
    page.goto(url)
    s = Screens(page, "pad")
    for step in ("#btn-start", '[data-purpose="class"]', "#btn-people-next", "#btn-not-listed"):
        s.tap(step)
    s.tap('#screen-identify [data-go="notice"]')
    s.tap("#btn-agree")
    keys = page.locator("#screen-member .key")
    expect(keys).to_have_count(12)
    expect(page.locator('#screen-member [data-key="clear"]')).to_have_text("清空")
    before = [keys.nth(i).bounding_box() for i in range(12)]
    for digit in "1234567890123456":  # the longest code: 16 characters
        s.tap(f'#screen-member [data-key="{digit}"]')
    expect(page.locator("#member-display")).to_have_text("1234567890123456")
    s.check("member-16")
    assert [keys.nth(i).bounding_box() for i in range(12)] == before  # no key moved or shrank
    s.tap('#screen-member [data-key="del"]')
    expect(page.locator("#member-display")).to_have_text("123456789012345")
    s.tap('#screen-member [data-key="clear"]')
    expect(page.locator("#member-display")).to_have_text("")
    s.tap("#btn-lang")
    expect(page.locator('#screen-member [data-key="del"]')).to_have_text("Delete")
    s.check("member-en")


def test_ten_inch_screen_scales_up(serve, browser):
    url, _ = serve()
    page = new_page(browser, 1280, 800)
    page.goto(url)
    s = Screens(page, "10in")
    s.on("welcome")
    s.tap("#btn-start")
    s.on("purpose")
    assert s.seen[-1][1]["minFont"] > 24 and s.seen[-1][1]["minTarget"] > 80


def gray(png: bytes):
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)


def test_idle_warning_counts_down_30_seconds_over_the_visitors_screen(serve, browser):
    url, _ = serve()  # the shipped defaults: idle_seconds 60, warn_seconds 30
    page = new_page(browser)
    page.clock.install()
    page.goto(url)
    s = Screens(page, "idle")
    s.tap("#btn-start")
    s.tap('[data-purpose="reading"]')
    s.on("people")
    now = dt.datetime.fromtimestamp(page.evaluate("Date.now()") / 1000, dt.UTC)
    page.clock.pause_at(now + dt.timedelta(milliseconds=500))  # from here on, time moves only when told
    s.tap('[data-count="adults"][data-delta="1"]')
    behind = gray(page.screenshot())
    page.clock.run_for(60_000)
    expect(page.locator("#overlay-idle")).to_be_visible()
    expect(page.locator("#idle-seconds")).to_have_text("30")
    expect(page.locator("#idle-countdown")).to_have_text("30 秒后回到首页")
    s.check("idle-warning", axe=False)  # axe-core checks this dialog in the next test
    assert (
        float(page.locator("#idle-seconds").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 60
    )
    # The visitor's screen stays in view around the dialog: the same picture, only veiled.
    dialog = page.locator("#overlay-idle .dialog").bounding_box()
    bar = page.locator(".bar").bounding_box()
    top, bottom = int(bar["height"]) + 2, int(dialog["y"]) - 2
    assert bottom - top > 150, "the dialog hides most of the visitor's screen"
    veiled = gray(page.screenshot())
    before, after = behind[top:bottom].astype(float).ravel(), veiled[top:bottom].astype(float).ravel()
    assert before.std() > 20 and after.std() > 10
    assert np.corrcoef(before, after)[0, 1] > 0.95
    for waited, left in ((10, 20), (10, 10), (9, 1)):
        page.clock.run_for(waited * 1000)
        expect(page.locator("#idle-seconds")).to_have_text(str(left))
    expect(page.locator("body")).to_have_attribute("data-screen", "people")  # 29 s after the warning
    page.clock.run_for(1_000)
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome")
    expect(page.locator("#overlay-idle")).to_be_hidden()


def test_idle_warns_extends_and_never_resets_while_acting(serve, browser):
    url, _ = serve(idle_seconds=20, warn_seconds=10)
    page = new_page(browser)
    page.clock.install()
    page.goto(url)
    s = Screens(page, "idle-short")
    s.tap("#btn-start")
    s.tap('[data-purpose="reading"]')
    s.on("people")
    for _ in range(8):  # 8 x 15 s of tapping: well past the 20 + 10 s limit, and never interrupted
        page.clock.run_for(15_000)
        s.tap('[data-count="adults"][data-delta="1"]')
        expect(page.locator("#overlay-idle")).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-screen", "people")
    page.clock.run_for(21_000)
    expect(page.locator("#overlay-idle")).to_be_visible()
    expect(page.locator("#idle-countdown")).to_contain_text("秒后回到首页")
    s.check("idle-warning-zh")
    s.tap("#btn-more-time")
    expect(page.locator("#overlay-idle")).to_be_hidden()
    page.clock.run_for(21_000)
    expect(page.locator("#overlay-idle")).to_be_visible()
    s.tap("#btn-lang")  # the header stays usable above the dialog; any tap counts as "more time"
    page.clock.run_for(500)
    expect(page.locator("#overlay-idle")).to_be_hidden()
    expect(page.locator("#btn-more-time")).to_have_text("More time")
    page.clock.run_for(21_000)
    s.check("idle-warning-en")
    s.tap("#btn-lang")
    expect(page.locator("#count-adults")).to_have_text("9")  # nothing was lost
    page.clock.run_for(21_000)
    expect(page.locator("#overlay-idle")).to_be_visible()
    page.clock.run_for(10_000)
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome")
    expect(page.locator("#overlay-idle")).to_be_hidden()
