"""The district web on a real, throwaway PostgreSQL (tests/pg.py): two sites registered from site files, their
live rooms, devices and alerts as the ingest workers store them, raw events for today and a rolled-up yesterday;
district and site roles over HTTP; reports with CSV and XLSX; and the pages in real Chromium with axe-core
(screenshots in tests/artifacts/district/)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import http.cookiejar
import io
import json
import re
import threading
import urllib.parse
import urllib.request

import pytest
from werkzeug.serving import make_server

from footfall.clock import local_day
from footfall.demo.broker import free_port
from footfall.server.district_ingest import LiveBatch
from footfall.server.district_store import EVENT_FIELDS, DistrictStore
from footfall.server.district_web import create_app
from footfall.server.district_web.auth import add_user
from footfall.site import load_site
from tests.browser import launch_chromium
from tests.conftest import ARTIFACTS, EXAMPLE_SITE, wait_until
from tests.pg import PgCluster

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)  # 14:00 in Beijing
SHOTS = ARTIFACTS / "district"
PASSWORDS = {"office": "office-password", "dongsi-staff": "dongsi-password"}
# Today's visits per site (door-main `in`), and yesterday's (rolled up)
TODAY = {"dongsi": 7, "jiaodaokou": 12}
YESTERDAY = {"dongsi": 5, "jiaodaokou": 2}


def crossings(site: str, n: int, when: dt.datetime, tag: str) -> list[tuple]:
    rows = []
    for k in range(n):
        fields = dict.fromkeys(EVENT_FIELDS)
        fields.update(site=site, device="door-main", id=f"{tag}-{k}", seq=k, type="crossing",
                      ts=when + dt.timedelta(seconds=k), received=when, direction="in", count=1)  # fmt: skip
        rows.append(tuple(fields[f] for f in EVENT_FIELDS))
    return rows


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """A district store with two sites, their live state, today's events and yesterday rolled up."""
    cluster = PgCluster().start()
    dsn = cluster.create_database("district_web")
    tmp = tmp_path_factory.mktemp("district-web")
    (tmp / "site.toml").write_text(
        EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp}"')
    )
    dongsi = load_site(tmp / "site.toml")
    jiaodaokou = dataclasses.replace(dongsi, id="jiaodaokou", name="交道口街道党群服务中心")
    store = DistrictStore(dsn)
    store.add_site(dongsi)
    store.add_site(jiaodaokou)
    live = LiveBatch()
    when = NOW - dt.timedelta(minutes=1)
    for site, occupancy in (("dongsi", 3), ("jiaodaokou", 9)):
        for room in dongsi.rooms:
            state = {"room": room.id, "name": room.name, "occupancy": occupancy if room.id == "hall" else 1,
                     "capacity": room.capacity, "level": "busy" if site == "jiaodaokou" and room.id == "hall" else "ok",
                     "entries_today": TODAY[site] if room.id == "hall" else 1}  # fmt: skip
            live.add(f"footfall/{site}/room/{room.id}/state", _json(state), when, "footfall")
        for n, device in enumerate(d.id for d in dongsi.devices):
            online = site == "dongsi" or n % 2 == 0
            live.add(f"footfall/{site}/device/{device}/status", _json({"state": "online" if online else "offline"}),
                     when, "footfall")  # fmt: skip
    live.add("footfall/jiaodaokou/alerts", _json({"alerts": [{"kind": "device_offline"}, {"kind": "disk_low"}]}),
             when, "footfall")  # fmt: skip
    store.store_live(live.rooms, live.devices, live.alerts)
    yesterday = local_day(NOW, dongsi.timezone, dongsi.day_starts) - dt.timedelta(days=1)
    for site in TODAY:
        store.store_batch(crossings(site, TODAY[site], NOW - dt.timedelta(hours=2), f"{site}-today"))
        store.store_batch(crossings(site, YESTERDAY[site], NOW - dt.timedelta(days=1), f"{site}-yesterday"))
    store.rollup_day(yesterday)
    add_user(store.conn, "office", PASSWORDS["office"], "district", None)
    add_user(store.conn, "dongsi-staff", PASSWORDS["dongsi-staff"], "site", "dongsi")
    store.close()
    app = create_app(dsn, test_config={"FOOTFALL_NOW": lambda: NOW})
    yield {"dsn": dsn, "app": app, "site": dongsi, "cluster": cluster}
    cluster.stop()


def _json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def login(app, name: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"username": name, "password": PASSWORDS[name], "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def test_a_sites_staff_get_403_on_another_sites_pages_and_api(district):
    staff = login(district["app"], "dongsi-staff")
    for path in ("/sites/jiaodaokou", "/sites/jiaodaokou/reports/monthly", "/reports/monthly"):
        assert staff.get(path).status_code == 403, path
    for path in ("/api/v1/sites/jiaodaokou", "/api/v1/sites/jiaodaokou/reports/monthly",
                 "/api/v1/sites/jiaodaokou/reports/monthly.csv", "/api/v1/reports/annual.xlsx",
                 "/api/v1/sites/no-such-site"):  # fmt: skip
        answer = staff.get(path)
        assert answer.status_code == 403 and answer.json["error"] == "forbidden", path
    assert staff.get("/").headers["Location"].endswith("/sites/dongsi")
    assert [s["site"] for s in staff.get("/api/v1/sites").json] == ["dongsi"]
    assert staff.get("/sites/dongsi").status_code == 200
    assert staff.get("/api/v1/sites/dongsi/reports/monthly").status_code == 200
    # A district viewer sees every site; nobody logged in sees nothing.
    office = login(district["app"], "office")
    assert [s["site"] for s in office.get("/api/v1/sites").json] == ["dongsi", "jiaodaokou"]
    assert office.get("/sites/jiaodaokou").status_code == 200
    assert office.get("/api/v1/sites/no-such-site").status_code == 404
    anonymous = district["app"].test_client()
    assert anonymous.get("/api/v1/sites").status_code == 401
    assert anonymous.get("/sites/dongsi").headers["Location"].startswith("/login")


def test_dashboard_figures_come_from_the_stores_live_state_and_todays_events(district):
    office = login(district["app"], "office")
    sites = {s["site"]: s for s in office.get("/api/v1/sites").json}
    n_rooms, n_devices = len(district["site"].rooms), len(district["site"].devices)
    assert sites["dongsi"]["occupancy"] == 3 + (n_rooms - 1)
    assert sites["jiaodaokou"]["occupancy"] == 9 + (n_rooms - 1)
    assert {k: s["entries_today"] for k, s in sites.items()} == TODAY  # counted from today's raw events
    assert sites["dongsi"]["devices_online"] == n_devices == sites["dongsi"]["devices_total"]
    assert sites["jiaodaokou"]["devices_online"] == (n_devices + 1) // 2
    assert (sites["dongsi"]["alerts"], sites["jiaodaokou"]["alerts"]) == (0, 2)
    one = office.get("/api/v1/sites/jiaodaokou").json
    hall = next(r for r in one["rooms"] if r["room"] == "hall")
    assert (hall["occupancy"], hall["level"], hall["entries_today"]) == (9, "busy", TODAY["jiaodaokou"])
    assert hall["name"] == district["site"].rooms_by_id["hall"].name


def test_sites_sort_by_any_column_both_ways_and_a_bad_sort_is_a_400(district):
    office = login(district["app"], "office")
    order = lambda q: [s["site"] for s in office.get(f"/api/v1/sites?{q}").json]  # noqa: E731
    assert order("sort=entries_today&order=desc") == ["jiaodaokou", "dongsi"]
    assert order("sort=entries_today&order=asc") == ["dongsi", "jiaodaokou"]
    assert order("sort=alerts") == ["jiaodaokou", "dongsi"]  # busiest first by default
    page = office.get("/?sort=occupancy&order=asc").get_data(as_text=True)
    assert page.index('data-site="dongsi"') < page.index('data-site="jiaodaokou"')
    page = office.get("/?sort=occupancy&order=desc").get_data(as_text=True)
    assert page.index('data-site="jiaodaokou"') < page.index('data-site="dongsi"')
    bad = office.get("/api/v1/sites?sort=password")
    assert bad.status_code == 400 and "sort must be one of" in bad.json["detail"]


def test_district_reports_per_site_and_in_total_with_csv_and_xlsx(district):
    from openpyxl import load_workbook

    office = login(district["app"], "office")
    rep = office.get("/api/v1/reports/monthly?month=2026-12").json
    want = {site: TODAY[site] + YESTERDAY[site] for site in TODAY}
    assert {s["site"]: s["visits"] for s in rep["sites"]} == want  # yesterday's rollup + today counted now
    assert rep["total"]["visits"] == sum(want.values())
    assert {d["date"]: d["visits"] for d in rep["days"] if d["visits"]} == {
        "2026-12-01": sum(YESTERDAY.values()), "2026-12-02": sum(TODAY.values())}  # fmt: skip
    daily = office.get("/api/v1/reports/daily?date=2026-12-01").json
    assert daily["total"]["visits"] == sum(YESTERDAY.values())
    annual = office.get("/api/v1/reports/annual?year=2026").json
    assert annual["total"]["visits"] == sum(want.values())

    text = office.get("/api/v1/reports/monthly.csv?month=2026-12").get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert ["dongsi", district["site"].name, str(want["dongsi"]), "2", str(want["dongsi"] / 2)] in rows
    assert any(r[0] == "合计" and r[2] == str(sum(want.values())) for r in rows)
    answer = office.get("/api/v1/reports/monthly.xlsx?month=2026-12")
    assert answer.headers["Content-Disposition"].endswith('footfall-district-monthly-2026-12.xlsx"')
    book = load_workbook(io.BytesIO(answer.data))
    sheet = book["站点汇总"]
    total = [row for row in sheet.iter_rows(values_only=True) if row[0] == "合计"][0]
    assert total[2] == sum(want.values())  # a number, not text

    staff = login(district["app"], "dongsi-staff")
    own = staff.get("/api/v1/sites/dongsi/reports/monthly?month=2026-12").json
    assert [s["site"] for s in own["sites"]] == ["dongsi"] and own["total"]["visits"] == want["dongsi"]
    hall = next(r for r in own["rooms"] if r["room"] == "hall")
    assert hall["entries"] == want["dongsi"]
    book = load_workbook(io.BytesIO(staff.get("/api/v1/sites/dongsi/reports/annual.xlsx?year=2026").data))
    assert [row[:3] for row in book["各室进入人次"].iter_rows(values_only=True)][0] == (
        "站点编号",
        "房间编号",
        "房间名称",
    )
    assert office.get("/api/v1/reports/monthly?month=2026-13").status_code == 400


def test_district_exports_keep_formula_like_names_as_text():
    from openpyxl import load_workbook

    from footfall.server.district_web.reports import tables
    from footfall.server.reports import write_tables_csv, write_tables_xlsx

    rep = {"scope": {"site": None}, "total": {"sites": 1, "visits": 3}, "days": [], "rooms": [],
           "sites": [{"site": "x", "name": '=HYPERLINK("http://evil.example")', "visits": 3, "days": 1,
                      "average_daily_visits": 3.0}]}  # fmt: skip
    out = io.StringIO()
    write_tables_csv(tables(rep), out)
    assert "'=HYPERLINK" in out.getvalue()
    data = io.BytesIO()
    write_tables_xlsx(tables(rep), data)
    cell = load_workbook(data)["站点汇总"]["B2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK") and cell.quotePrefix


def test_a_new_password_ends_the_users_older_sessions(district):
    staff = login(district["app"], "dongsi-staff")
    assert staff.get("/api/v1/sites").status_code == 200
    store = DistrictStore(district["dsn"], migrate=False)
    add_user(store.conn, "dongsi-staff", PASSWORDS["dongsi-staff"], "site", "dongsi")  # the same, hashed anew
    store.close()
    assert staff.get("/api/v1/sites").status_code == 401
    bad = district["app"].test_client()
    page = bad.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = bad.post(
        "/login", data={"username": "dongsi-staff", "password": "wrong-one", "csrf_token": token}
    )
    assert answer.status_code == 401 and "用户名或密码不正确" in answer.get_data(as_text=True)


def test_behind_tls_the_session_cookie_is_secure(district):
    app = create_app(
        district["dsn"], test_config={"SESSION_COOKIE_SECURE": True, "FOOTFALL_NOW": lambda: NOW}
    )
    client = app.test_client()
    page = client.get("/login", base_url="https://district.example")
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")


def test_live_room_state_keeps_the_rooms_name_and_entries():
    live = LiveBatch()
    live.add("footfall/dongsi/room/hall/state", _json({"room": "hall", "name": "大厅", "occupancy": 2, "capacity": 80,
             "level": "ok", "entries_today": 41}), NOW, "footfall")  # fmt: skip
    assert live.rooms == [("dongsi", "hall", 2, 80, "ok", NOW, "大厅", 41)]


def test_the_district_web_command_serves_the_login_page_and_user_add_saves_an_account(
    district, procs, tmp_path
):
    from click.testing import CliRunner

    from footfall.cli import main

    result = CliRunner().invoke(main, ["district", "user", "add", "--database", district["dsn"], "someone",
                                       "--role", "site", "--site", "nowhere", "--password", "long-enough"])  # fmt: skip
    assert result.exit_code != 0 and "no site 'nowhere'" in result.output
    result = CliRunner().invoke(main, ["district", "user", "add", "--database", district["dsn"], "viewer2",
                                       "--role", "district", "--password", "long-enough"])  # fmt: skip
    assert result.exit_code == 0, result.output
    port = free_port()
    procs(
        "district",
        "web",
        "--database",
        district["dsn"],
        "--listen",
        f"127.0.0.1:{port}",
        env=None,
        name="web",
    )

    def login_page() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                return answer.read().decode()
        except OSError:
            return None

    page = wait_until(login_page, 30, message="district web answering")
    assert "工作人员登录" in page
    # Logged in through the real server (gevent, a PostgreSQL connection per request): the sites as JSON.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://127.0.0.1:{port}"
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', opener.open(f"{base}/login").read().decode()
    ).group(1)
    form = {"username": "viewer2", "password": "long-enough", "csrf_token": token}
    opener.open(f"{base}/login", urllib.parse.urlencode(form).encode())
    sites = json.loads(opener.open(f"{base}/api/v1/sites?sort=entries_today").read())
    # This server counts on the real clock, not the fixture's NOW: whatever day it is, fullest first.
    assert {s["site"] for s in sites} == {"jiaodaokou", "dongsi"}
    entries = [s["entries_today"] for s in sites]
    assert entries == sorted(entries, reverse=True)

    site_file = tmp_path / "site.toml"
    site_file.write_text(EXAMPLE_SITE.read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path}"'))
    args = ["district", "add-site", "--dir", str(tmp_path / "acc"), "-c", str(site_file), "--district-host", "d",
            "--out", str(tmp_path / "bridge.conf"), "--database", district["dsn"], "--site-url", "http://dongsi.lan/"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    office = login(district["app"], "office")
    assert office.get("/api/v1/sites/dongsi").json["url"] == "http://dongsi.lan/"
    assert 'href="http://dongsi.lan/"' in office.get("/sites/dongsi").get_data(as_text=True)


# --- real Chromium --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_page(district):
    from playwright.sync_api import sync_playwright

    server = make_server("127.0.0.1", 0, district["app"], threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as p:
        browser = launch_chromium(p)
        # bypass_csp: axe-core is injected as an inline script, which the pages' CSP rightly refuses
        page = browser.new_page(
            viewport={"width": 1280, "height": 900}, accept_downloads=True, bypass_csp=True
        )
        yield base, page
        browser.close()
    server.shutdown()


def browser_login(base: str, page, name: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("#login-submit")


def check_page(page, name: str) -> None:
    from tests.test_kiosk_browser import axe_violations

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert axe_violations(page) == [], name
    assert not page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth"), (
        name
    )
    smallest = page.evaluate(
        "Math.min(...[...document.querySelectorAll('main td, main th, main p, main a, main .stat-label')]"
        ".map((e) => parseFloat(getComputedStyle(e).fontSize)))"
    )
    assert smallest >= 18, f"{name}: text at {smallest}px"  # the site dashboard's age-friendly minimum
    lowest = page.evaluate(
        "Math.min(1000, ...[...document.querySelectorAll('main .btn, main button, th a.sort-link, .report-tabs a')]"
        ".map((e) => e.getBoundingClientRect().height))"
    )
    assert lowest >= 48, f"{name}: a button or heading link {lowest}px tall"


@pytest.mark.browser
def test_dashboard_sorts_drills_into_a_site_and_downloads_a_report_in_chromium(district, browser_page):
    base, page = browser_page
    browser_login(base, page, "office")
    assert page.text_content("#t-entries") == str(sum(TODAY.values()))
    check_page(page, "dashboard")
    page.click("th >> text=今日进馆人次")
    rows = page.locator("#sites tbody tr").evaluate_all("(rows) => rows.map((r) => r.dataset.site)")
    assert rows == ["jiaodaokou", "dongsi"]
    assert page.get_attribute("th[aria-sort]", "aria-sort") == "descending"
    page.click("th >> text=今日进馆人次")  # again: the other way
    rows = page.locator("#sites tbody tr").evaluate_all("(rows) => rows.map((r) => r.dataset.site)")
    assert rows == ["dongsi", "jiaodaokou"]
    page.click("a.site-link >> text=交道口街道党群服务中心")
    assert page.text_content("#site-title") == "交道口街道党群服务中心"
    hall = district["site"].rooms_by_id["hall"].name
    assert page.locator(".room-card", has_text=hall).locator(".occ-now").text_content() == "9"
    check_page(page, "site")
    page.goto(f"{base}/reports/monthly?month=2026-12")
    assert page.text_content("#total-visits") == str(sum(TODAY.values()) + sum(YESTERDAY.values()))
    check_page(page, "reports-monthly")
    with page.expect_download() as download:
        page.click("#dl-xlsx")
    assert download.value.suggested_filename == "footfall-district-monthly-2026-12.xlsx"


@pytest.mark.browser
def test_the_dashboard_refreshes_its_figures_every_20_seconds_in_chromium(district, browser_page):
    base, page = browser_page
    browser_login(base, page, "office")
    page.clock.install()
    page.goto(f"{base}/")
    before = int(page.text_content("#t-entries"))
    store = DistrictStore(district["dsn"])
    try:
        store.store_batch(crossings("dongsi", 4, NOW - dt.timedelta(hours=1), "refresh"))
        page.clock.run_for(19_000)
        assert int(page.text_content("#t-entries")) == before  # not yet
        page.clock.run_for(2_000)
        page.wait_for_function(f"document.querySelector('#t-entries').textContent === '{before + 4}'")
        cells = page.locator("tr[data-site=dongsi] .c-entries").text_content()
        assert cells == str(TODAY["dongsi"] + 4)
    finally:
        store.conn.execute("DELETE FROM events WHERE id LIKE 'refresh-%'")
        store.conn.commit()
        store.close()


@pytest.mark.browser
def test_a_sites_staff_in_chromium_land_on_their_site_and_are_refused_another(district, browser_page):
    base, page = browser_page
    browser_login(base, page, "dongsi-staff")
    assert page.url.endswith("/sites/dongsi")
    assert page.text_content("#site-title") == district["site"].name
    answer = page.goto(f"{base}/sites/jiaodaokou")
    assert answer.status == 403 and "没有查看此页面的权限" in page.text_content("main")
    check_page(page, "forbidden")
