"""Kiosk check-in latency benchmark (prints `name: value` lines; under 60 s).

Real headless Chromium (Playwright, 800x480, touch) taps through an anonymous check-in against the real kiosk app
(threaded werkzeug server, EdgeRuntime with its durable outbox) connected to a real Mosquitto. The time measured is
from the last tap (pointerdown on "check in now") to the frame that shows the success screen, both read from the
page's own clock (performance.now()).

- p95_ms_broker_up: Mosquitto running, a server status retained on it (so the outbox publishes each event while
  the visitor looks at the success screen; outbox_after_up is 0 when all were acknowledged).
- p95_ms_broker_down: Mosquitto stopped (the event waits in the outbox; the visitor must not notice).
Targets: < 300 ms each.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from footfall import topics  # noqa: E402
from footfall.demo.broker import LocalBroker  # noqa: E402
from footfall.kiosk.config import kiosk_config_from_dict  # noqa: E402
from footfall.kiosk.main import KioskService  # noqa: E402
from footfall.kiosk.pin import hash_pin  # noqa: E402

SAMPLES = 30
PURPOSES = ("affairs", "reading", "counselling", "culture", "other")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def one_checkin(page, n: int) -> float:
    page.tap("#btn-start")
    page.tap(f'[data-purpose="{PURPOSES[n % len(PURPOSES)]}"]')
    page.tap("#btn-people-next")
    page.tap("#btn-anonymous")
    expect(page.locator("body")).to_have_attribute("data-screen", "success")
    page.wait_for_function("window.kiosk.marks.success > window.kiosk.marks.tap")
    ms = page.evaluate("window.kiosk.marks.success - window.kiosk.marks.tap")
    page.tap("#btn-done")
    expect(page.locator("body")).to_have_attribute("data-screen", "welcome")
    return ms


def run() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log lines in the output
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalBroker(Path(tmp) / "broker", kind="mosquitto").start()
        # The server's retained status: the edge runtime holds events until it has seen a server.
        subprocess.run(
            [
                "mosquitto_pub",
                "-p",
                str(broker.port),
                "-q",
                "1",
                "-r",
                "-t",
                topics.server_status("dongsi"),
                "-m",
                "online",
            ],
            check=True,
        )
        raw = {
            "device": {"id": "kiosk-hall", "site": "dongsi", "clock": "synced"},
            "mqtt": {"port": broker.port},
            "kiosk": {"data_dir": str(Path(tmp) / "kiosk"), "staff_pin_hash": hash_pin("3071")},
        }
        service = KioskService(kiosk_config_from_dict(raw, env={}), port=0).start()
        runtime = service.kiosk.runtime
        try:
            runtime.link.wait_connected(10)
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=shutil.which("chromium"),
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_context(viewport={"width": 800, "height": 480}, has_touch=True).new_page()
                page.goto(service.url)
                one_checkin(page, 0)  # warm-up
                up = [one_checkin(page, n) for n in range(SAMPLES)]
                deadline = time.monotonic() + 5
                while runtime.outbox.queue and time.monotonic() < deadline:
                    time.sleep(0.05)
                delivered_up = runtime.outbox.queue
                broker.stop()
                deadline = time.monotonic() + 10
                while runtime.link.connected.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)
                down = [one_checkin(page, n) for n in range(SAMPLES)]
                queued_down = runtime.outbox.queue
                browser.close()
        finally:
            service.stop()
            broker.stop()
    print(f"samples_broker_up: {len(up)}")
    print(f"samples_broker_down: {len(down)}")
    print(f"p95_ms_broker_up: {p95(up):.1f}")
    print(f"p95_ms_broker_down: {p95(down):.1f}")
    print(f"median_ms_broker_up: {statistics.median(up):.1f}")
    print(f"median_ms_broker_down: {statistics.median(down):.1f}")
    print(f"max_ms: {max(up + down):.1f}")
    print(f"outbox_after_up: {delivered_up}")
    print(f"outbox_after_down: {queued_down}")
    print(f"wall_s: {time.monotonic() - started:.1f}")


if __name__ == "__main__":
    run()
