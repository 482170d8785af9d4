"""Reports benchmark: prints `name: value` lines (seconds). Runs in well under a minute.

- center_year_rollup_s: `rollup_pending` over a simulated year at the reference center (tests/yearsim.py,
  ~160k events, written straight into the events table as ingest stores them).
- annual_report_s: GET /reports/annual (the page with its SVG charts) over that year, rollups already stored.
- district_day_rollup_s: one day of a synthetic district of 500 centers (~600,000 events) in ONE store: a site
  file with 500 x 9 rooms and 500 x 10 devices (ids prefixed by the center), so the whole district's day is one
  rollup; a district server with a store per center would do 500 small ones instead (same work, split).
- sqlite_scan_s: the baseline, the rollup's own SELECT of the day's rows into plain tuples (as the rollup reads
  them; best of three); district_ratio = rollup / scan.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from footfall.clock import format_ts, local_day, parse_ts  # noqa: E402
from footfall.config import load_toml  # noqa: E402
from footfall.server.reports import rollup_pending  # noqa: E402
from footfall.server.schedule import create_item  # noqa: E402
from footfall.server.store import SqliteStore  # noqa: E402
from footfall.site import site_from_dict  # noqa: E402

COLS = ("device", "id", "seq", "type", "ts", "device_ts", "received_at", "day", "clock_flag", "door", "direction",
        "count", "purpose", "adults", "children", "activity", "member", "room")  # fmt: skip
INSERT = f"INSERT INTO events ({', '.join(COLS)}) VALUES ({', '.join('?' * len(COLS))})"


def site_dict(centers: int) -> dict:
    base = load_toml(ROOT / "deploy" / "examples" / "site.toml")
    if centers == 1:
        return base
    rooms, doors, devices = [], [], []
    for n in range(centers):
        p = f"c{n:03d}-"
        rooms += [{**r, "id": p + r["id"]} for r in base["rooms"]]
        doors += [{"id": p + d["id"], "device": p + d["device"], "inside": p + d["inside"],
                   "outside": d["outside"] if d["outside"] == "outdoors" else p + d["outside"]} for d in base["doors"]]  # fmt: skip
        devices += [{**d, "id": p + d["id"], **({"room": p + d["room"]} if d.get("room") else {})}
                    for d in base["devices"]]  # fmt: skip
    return {**base, "rooms": rooms, "doors": doors, "devices": devices}


def row(site, device, id_, ts, **fields):
    text = format_ts(ts)
    out = dict.fromkeys(COLS)
    out.update(device=device, id=id_, seq=0, type="crossing", ts=text, device_ts=text, received_at=text,
               day=local_day(ts, site.timezone, site.day_starts).isoformat())  # fmt: skip
    out.update(fields)
    return tuple(out[c] for c in COLS)


def center_year(tmp: Path) -> None:
    from tests.yearsim import YEAR, generate

    site = site_from_dict(site_dict(1), str(tmp / "center.toml"))
    year = generate(site)
    store = SqliteStore(tmp / "center.db")
    now = dt.datetime(YEAR + 1, 1, 10, 2, tzinfo=dt.UTC)
    for item in year.items:
        create_item(store, site, item, now)
    rows = []
    for _ts, msg in year.events:
        e = json.loads(msg.payload)
        device = msg.topic.split("/")[3]
        door = site.doors_by_device.get(device)
        rows.append(row(site, device, e["id"], parse_ts(e["ts"]), type=e["type"], door=door.id if door else None,
                        **{k: e.get(k) for k in ("direction", "count", "purpose", "adults", "children", "activity",
                                                 "member")}))  # fmt: skip
    with store.transaction() as tx:
        tx.conn.executemany(INSERT, rows)
    start = time.perf_counter()
    rollup_pending(site, store, now)
    print(f"center_year_rollup_s: {time.perf_counter() - start:.3f}")
    print(f"center_year_events: {len(rows)}")
    from footfall.server.web import create_app
    from footfall.server.web.auth import create_token

    app = create_app(site, store, None, {"FOOTFALL_NOW": lambda: now})
    token = create_token(store, "viewer", "bench")
    client = app.test_client()
    start = time.perf_counter()
    page = client.get(f"/reports/annual?year={YEAR}", headers={"Authorization": f"Bearer {token}"})
    elapsed = time.perf_counter() - start
    assert page.status_code == 200, page.status_code
    print(f"annual_report_s: {elapsed:.3f}")
    start = time.perf_counter()
    client.get(f"/api/v1/reports/annual?year={YEAR}", headers={"Authorization": f"Bearer {token}"})
    print(f"annual_report_api_s: {time.perf_counter() - start:.3f}")


def district_day(tmp: Path, centers: int = 500) -> None:
    site = site_from_dict(site_dict(centers), str(tmp / "district.toml"))
    store = SqliteStore(tmp / "district.db")
    rng = random.Random(5)
    day = dt.date(2026, 11, 20)
    opening = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)  # 08:30 Beijing
    inner = ["book-bar", "classroom", "culture-sports", "e-learning", "parent-child", "multi-purpose"]
    rows, n = [], 0
    for c in range(centers):
        p = f"c{c:03d}-"
        for _ in range(300):  # people, one by one: about 1,200 events per center
            t = opening + dt.timedelta(seconds=rng.randint(0, 11 * 3600))
            room = rng.choice(inner)
            for device, direction, dt_s in (("door-main", "in", 0), (f"door-{room}", "in", 120),
                                            (f"door-{room}", "out", 2400), ("door-main", "out", 2600)):  # fmt: skip
                n += 1
                ts = t + dt.timedelta(seconds=dt_s, milliseconds=rng.randint(0, 999))
                rows.append(row(site, p + device, f"e{n}", ts, door="d", direction=direction, count=1))
    with store.transaction() as tx:
        tx.conn.executemany(INSERT, rows)
    now = dt.datetime(2026, 11, 21, 2, tzinfo=dt.UTC)
    # The baseline is the query a person would write by hand to read the day: the same SELECT as the rollup's,
    # into plain tuples (the store's connection makes sqlite3.Row objects, which the rollup itself avoids as about
    # twice as slow; a baseline that built them would flatter the ratio). Best of three, on a warm page cache.
    scans = []
    for _ in range(3):
        cursor = store.conn.cursor()
        cursor.row_factory = None
        start = time.perf_counter()
        scanned = cursor.execute(
            "SELECT ts, device, direction, count FROM events WHERE day=? AND type='crossing'",
            (day.isoformat(),),
        ).fetchall()
        scans.append(time.perf_counter() - start)
    scan = min(scans)
    assert type(scanned[0]) is tuple  # noqa: E721 (exactly a tuple, not a Row)
    start = time.perf_counter()
    assert rollup_pending(site, store, now) == [day]
    rollup = time.perf_counter() - start
    print(f"district_events: {len(scanned)}")
    print(f"sqlite_scan_s: {scan:.3f}")
    print(f"district_day_rollup_s: {rollup:.3f}")
    print(f"district_ratio: {rollup / scan:.1f}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        center_year(Path(tmp))
        district_day(Path(tmp))


if __name__ == "__main__":
    main()
