"""The kiosk UI in real headless Chromium at 800x480 (and 1280x800): a full check-in by taps, a screenshot of every
screen under tests/artifacts/kiosk/, and on every screen an audit computed from the rendered page: touch targets
>= 60 px, text >= 24 px, WCAG contrast >= 4.5:1, everything inside the screen."""

from __future__ import annotations

import json
import shutil
import threading

import cv2
import numpy as np
import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from footfall.kiosk.app import create_app
from tests.conftest import ARTIFACTS
from tests.test_kiosk_app import MEMBER, NOW, PIN, make_config, schedule_payload

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "kiosk"

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
    if (!visible(el) || el.closest('script')) continue;
    if (!overlay && el.closest('.overlay')) continue;
    const r = el.getBoundingClientRect();
    const label = (el.id || el.className || el.tagName) + ' "' + (el.textContent || '').trim().slice(0, 20) + '"';
    if (el.tagName === 'BUTTON') {
      buttons++; minTarget = Math.min(minTarget, r.width, r.height);
      if (r.width < 60 || r.height < 60) problems.push('target ' + Math.round(r.width) + 'x' + Math.round(r.height) + ' ' + label);
    }
    if (r.right > W + 0.5 || r.bottom > H + 0.5 || r.left < -0.5 || r.top < -0.5) problems.push('outside the screen ' + label);
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


def qr_frame(text: str):
    qr = cv2.QRCodeEncoder.create().encode(text)
    big = cv2.resize(np.pad(qr, 4, constant_values=255), (240, 240), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


@pytest.fixture
def serve(tmp_path):
    """Start the kiosk app on a real threaded HTTP server on 127.0.0.1 (no broker: events stay in the outbox)."""
    running = []

    def start(name: str = "k", **test_config):
        app = create_app(make_config(tmp_path / name), test_config={"now": lambda: NOW, **test_config})
        kiosk = app.extensions["kiosk"]
        kiosk.local.set_schedule(schedule_payload())
        full = {
            "v": 1,
            "room": "culture-sports",
            "name": "文体活动室",
            "name_en": "Culture and sports room",
            "level": "full",
            "occupancy": 40,
            "capacity": 40,
        }
        kiosk.local.set_room("culture-sports", json.dumps(full, ensure_ascii=False).encode())
        busy = {"v": 1, "room": "book-bar", "name": "党建书吧", "name_en": "Book bar", "level": "busy"}
        kiosk.local.set_room("book-bar", json.dumps(busy, ensure_ascii=False).encode())
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
        b = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def new_page(browser, width=800, height=480):
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=True, device_scale_factor=1
    )
    return context.new_page()


class Screens:
    """Taps through the UI, saving a screenshot of each screen and auditing it."""

    def __init__(self, page, tag: str):
        self.page, self.tag, self.seen = page, tag, []
        SHOTS.mkdir(parents=True, exist_ok=True)

    def on(self, screen: str, shot: str | None = None):
        expect(self.page.locator("body")).to_have_attribute("data-screen", screen)
        expect(self.page.locator("#btn-lang")).to_be_visible()  # English (or Chinese) one tap away everywhere
        self.check(shot or screen)

    def check(self, name: str):
        self.page.evaluate("document.fonts.ready")
        self.page.screenshot(path=str(SHOTS / f"{self.tag}-{len(self.seen):02d}-{name}.png"))
        audit = self.page.evaluate(AUDIT_JS)
        assert audit["problems"] == [], f"{self.tag} {name}: {audit['problems']}"
        assert audit["texts"] > 0 and audit["buttons"] > 0 and audit["cjk"], audit
        self.seen.append((name, audit))

    def tap(self, selector: str):
        self.page.tap(selector)


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
    s.tap("#btn-member-confirm")


def test_full_checkin_by_taps_every_screen_audited(serve, browser):
    frames = {"qr": False}
    url, kiosk = serve(frame_source=lambda: qr_frame(f"footfall-member:{MEMBER}") if frames["qr"] else None)
    page = new_page(browser)
    page.goto(url)
    s = Screens(page, "zh")
    expect(page.locator("#today-list")).to_contain_text("太极拳")
    expect(page.locator("#room-list")).to_contain_text("已满")
    checkin_by_taps(s, page)
    s.on("success")
    expect(page.locator("#success-title")).to_have_text("签到成功！")
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
    s.on("welcome", "welcome-again")

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
    # The success screen goes back to welcome by itself.
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome", timeout=10_000)

    # Call staff, from any screen: a dialog confirms it.
    s.tap("#btn-start")
    s.tap("#btn-help")
    expect(page.locator("#overlay-help")).to_be_visible()
    s.check("help-dialog")
    s.tap('#overlay-help [data-close="overlay-help"]')
    assert [json.loads(p.payload)["type"] for p in kiosk.runtime.outbox.pending(0, 10)] == ["checkin", "help"]

    # Staff mode behind the PIN.
    s.tap('#screen-purpose [data-go="welcome"]')
    s.tap("#btn-staff")
    s.on("pin", "staff-pin")
    for digit in "1111":
        s.tap(f'#screen-pin [data-key="{digit}"]')
    s.tap("#btn-pin-enter")
    expect(page.locator("#pin-message")).to_have_text("密码不正确")
    for digit in PIN:
        s.tap(f'#screen-pin [data-key="{digit}"]')
    s.tap("#btn-pin-enter")
    s.on("staff")
    expect(page.locator("#staff-device")).to_contain_text("kiosk-hall")
    expect(page.locator("#staff-queue")).to_have_text("2")
    expect(page.locator("#staff-link")).to_contain_text("未连接")
    s.tap("#btn-staff-exit")
    s.on("welcome", "after-staff")
    assert len(s.seen) >= 14


def test_english_is_one_tap_away_on_every_screen(serve, browser):
    url, kiosk = serve()
    page = new_page(browser)
    page.goto(url)
    s = Screens(page, "en")
    s.tap("#btn-lang")
    expect(page.locator("#btn-start")).to_have_text("Tap to check in")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    checkin_by_taps(s, page)
    s.on("success")
    expect(page.locator("#success-title")).to_have_text("You are checked in!")
    s.tap("#btn-done")
    expect(page.locator("#btn-start")).to_have_text("点这里签到")  # the next visitor starts in Chinese


def test_ten_inch_screen_scales_up(serve, browser):
    url, _ = serve()
    page = new_page(browser, 1280, 800)
    page.goto(url)
    s = Screens(page, "10in")
    s.on("welcome")
    s.tap("#btn-start")
    s.on("purpose")
    assert s.seen[-1][1]["minFont"] > 24 and s.seen[-1][1]["minTarget"] > 80


def test_idle_warns_extends_and_never_resets_while_acting(serve, browser):
    url, _ = serve(idle_seconds=20, warn_seconds=10)
    page = new_page(browser)
    page.clock.install()
    page.goto(url)
    s = Screens(page, "idle")
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
    s.check("idle-warning")
    s.tap("#btn-more-time")
    expect(page.locator("#overlay-idle")).to_be_hidden()
    page.clock.run_for(21_000)
    expect(page.locator("#overlay-idle")).to_be_visible()
    s.tap("#btn-lang")  # the header stays usable above the dialog; any tap counts as "more time"
    page.clock.run_for(500)
    expect(page.locator("#overlay-idle")).to_be_hidden()
    expect(page.locator("#btn-more-time")).to_have_text("More time")
    s.tap("#btn-lang")
    expect(page.locator("#count-adults")).to_have_text("9")  # nothing was lost
    page.clock.run_for(21_000)
    expect(page.locator("#overlay-idle")).to_be_visible()
    page.clock.run_for(10_000)
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome")
    expect(page.locator("#overlay-idle")).to_be_hidden()
