"""Report pages (daily, weekly, monthly, annual; printable), their JSON API under /api/v1/reports, CSV and XLSX
exports, and the server-side SVG charts (no JavaScript, no CDN: the pages print and work offline)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape

from footfall.server import reports
from footfall.server.rooms import today
from footfall.server.web.auth import ApiError, require, require_page
from footfall.server.web.context import web
from footfall.server.web.i18n import current_lang, room_name, translate

bp = Blueprint("reports", __name__)
PARAM = {"daily": "date", "weekly": "date", "monthly": "month", "annual": "year"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _report(kind: str) -> dict[str, Any]:
    if kind not in reports.PERIODS:
        raise ApiError(404, "not_found", f"no {kind!r} report (one of {', '.join(reports.PERIODS)})")
    w = web()
    now = w.now()
    try:
        anchor = reports.parse_anchor(kind, request.args.get(PARAM[kind]), today(w.site, now))
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"{PARAM[kind]}: {exc}") from None
    return reports.report(w.site, w.store, kind, anchor, now)


def _filename(rep: dict[str, Any], ext: str) -> str:
    return f"footfall-{rep['site']['id']}-{rep['period']['kind']}-{rep['period']['label']}.{ext}"


@bp.get("/api/v1/reports/<kind>")
@require("viewer")
def api_report(kind: str):
    return jsonify(_report(kind))


@bp.get("/api/v1/reports/<kind>.csv")
@require("viewer")
def api_csv(kind: str):
    rep = _report(kind)
    out = io.StringIO()
    reports.write_csv(rep, out, request.args.get("lang") or current_lang())
    headers = {"Content-Disposition": f'attachment; filename="{_filename(rep, "csv")}"'}
    # A BOM so that Excel opens the Chinese text as UTF-8.
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv", headers=headers)


@bp.get("/api/v1/reports/<kind>.xlsx")
@require("viewer")
def api_xlsx(kind: str):
    rep = _report(kind)
    out = io.BytesIO()
    reports.write_xlsx(rep, out, request.args.get("lang") or current_lang())
    headers = {"Content-Disposition": f'attachment; filename="{_filename(rep, "xlsx")}"'}
    return Response(out.getvalue(), mimetype=XLSX, headers=headers)


# --- pages -------------------------------------------------------------------------------------------


def _neighbours(kind: str, rep: dict[str, Any]) -> tuple[str, str]:
    start, end = (dt.date.fromisoformat(rep["period"][k]) for k in ("start", "end"))
    # At the ends of the calendar the link stays on this period instead of leading to a 400.
    before = max(start - dt.timedelta(days=1), reports.FIRST_DAY)
    after = min(end + dt.timedelta(days=1), reports.LAST_DAY)
    fmt = {"daily": "%Y-%m-%d", "weekly": "%Y-%m-%d", "monthly": "%Y-%m", "annual": "%Y"}[kind]
    return before.strftime(fmt), after.strftime(fmt)


@bp.get("/reports")
@require_page("viewer")
def index():
    return redirect(url_for("reports.page", kind="monthly"))


@bp.get("/reports/<kind>")
@require_page("viewer")
def page(kind: str):
    if kind not in reports.PERIODS:
        return redirect(url_for("reports.page", kind="monthly"))
    rep = _report(kind)  # a date outside the calendar is a 400 JSON error that names the range, as in the API
    lang = current_lang()
    prev, nxt = _neighbours(kind, rep)
    rooms = {r["room"]: room_name(r, lang) for r in rep["rooms"]}
    charts = {
        "hours": bar_chart(
            [(f"{h:02d}", n) for h, n in enumerate(rep["hours"])], translate("reports.chart.hours")
        ),
        "rooms": hbar_chart(
            [(rooms[r["room"]], r["entries"]) for r in rep["rooms"]], translate("reports.t.rooms")
        ),
        "heatmap": heatmap(
            [(rooms[r["room"]], r["hourly"]) for r in rep["rooms"]], translate("reports.chart.heatmap")
        ),
    }
    months = by_month(rep) if kind == "annual" else []
    month_names = translate("reports.month_names").split(",")
    if kind == "annual":  # twelve bars, not 365
        labels = [(month_names[m["month"] - 1], m["visits"]) for m in months]
        charts["days"] = bar_chart(labels, translate("reports.chart.months"))
    elif kind != "daily":
        cut = {"weekly": 5, "monthly": 8}[kind]  # MM-DD, DD
        labels = [(d["date"][cut:], d["visits"]) for d in rep["days"]]
        charts["days"] = bar_chart(labels, translate("reports.chart.days"))
    query = {PARAM[kind]: rep["period"]["label"] if kind in ("monthly", "annual") else rep["period"]["start"]}
    return render_template(
        "reports.html",
        kind=kind,
        rep=rep,
        h=rep["headline"],
        charts=charts,
        rooms=rooms,
        prev=prev,
        next=nxt,
        param=PARAM[kind],
        query=query,
        periods=reports.PERIODS,
        months=months,
        month_names=month_names,
        picker=_picker(kind, rep),
        user=current_user,
    )


def by_month(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """An annual report's twelve months from its days: visits, check-ins, people, days open, daily average.
    Months after today have zeros, so the twelve rows always add up to the year's headline figures."""
    months = [{"month": m, "visits": 0, "checkins": 0, "people": 0, "days_open": 0} for m in range(1, 13)]
    for day in rep["days"]:
        row = months[int(day["date"][5:7]) - 1]
        for key in ("visits", "checkins", "people"):
            row[key] += day[key]
        row["days_open"] += 1 if day["visits"] > 0 else 0
    for row in months:
        row["average"] = round(row["visits"] / row["days_open"], 1) if row["days_open"] else 0.0
    return months


def _picker(kind: str, rep: dict[str, Any]) -> dict[str, Any]:
    """What the period picker offers: the field's name, type and value, its limits, and quick choices (the
    shown year's months on the monthly report, nearby years on the annual one)."""
    start = dt.date.fromisoformat(rep["period"]["start"])
    this_year = today(web().site, web().now()).year
    field: dict[str, Any] = {"name": PARAM[kind], "kind": kind}
    if kind in ("daily", "weekly"):
        field.update(type="date", value=start.isoformat(), min=reports.FIRST_DAY.isoformat(),
                     max=reports.LAST_DAY.isoformat())  # fmt: skip
    elif kind == "monthly":
        field.update(type="month", value=start.strftime("%Y-%m"), min=reports.FIRST_DAY.strftime("%Y-%m"),
                     max=reports.LAST_DAY.strftime("%Y-%m"))  # fmt: skip
        field["choices"] = [(f"{start.year}-{m:02d}", m, m == start.month) for m in range(1, 13)]
    else:
        years = sorted({*range(max(reports.FIRST_DAY.year, this_year - 9), this_year + 1), start.year})
        field.update(type="select", value=str(start.year), years=[str(y) for y in reversed(years)])
    return field


# --- charts --------------------------------------------------------------------------------------------

FONT = 'font-family="Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif"'


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    head = (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" {FONT} font-size="14"><title>{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


def bar_chart(values: list[tuple[str, int]], title: str, every: int = 1) -> Markup:
    """Vertical bars with a value axis; a label under every `every`-th bar."""
    width, height, left, bottom, top = 900, 260, 48, 28, 12
    top_value = max([v for _, v in values] + [1])
    slot = (width - left - 8) / max(len(values), 1)
    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#4a5560"/>'
    ]
    for frac in (0.5, 1.0):
        y = height - bottom - frac * (height - bottom - top)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="#c9d1d9"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4a5560">'
                    f"{round(top_value * frac)}</text>")  # fmt: skip
    for n, (label, value) in enumerate(values):
        bar = value / top_value * (height - bottom - top)
        x = left + n * slot + slot * 0.12
        body.append(
            f'<rect x="{x:.1f}" y="{height - bottom - bar:.1f}" width="{slot * 0.76:.1f}" height="{bar:.1f}" '
            f'fill="#a8141c"><title>{escape(label)}: {value}</title></rect>'
        )
        if n % every == 0:
            body.append(f'<text x="{x + slot * 0.38:.1f}" y="{height - 10}" text-anchor="middle" '
                        f'fill="#1a1f24">{escape(label)}</text>')  # fmt: skip
    return _svg(width, height, title, body)


def hbar_chart(values: list[tuple[str, int]], title: str) -> Markup:
    width, row, left = 900, 30, 230
    height = row * len(values) + 10
    top_value = max([v for _, v in values] + [1])
    body = []
    for n, (label, value) in enumerate(values):
        y = 5 + n * row
        bar = value / top_value * (width - left - 90)
        body.append(f'<text x="{left - 8}" y="{y + 19}" text-anchor="end" fill="#1a1f24" font-size="15">'
                    f"{escape(label)}</text>")  # fmt: skip
        body.append(f'<rect x="{left}" y="{y + 4}" width="{bar:.1f}" height="{row - 8}" fill="#2e7d3a"/>')
        body.append(
            f'<text x="{left + bar + 6:.1f}" y="{y + 19}" fill="#1a1f24" font-size="15">{value}</text>'
        )
    return _svg(width, height, title, body)


def heatmap(rows: list[tuple[str, list[int]]], title: str) -> Markup:
    """Rooms x local clock hours: the darker, the more entries (which rooms are used, and when)."""
    hours = [h for h in range(24) if any(r[1][h] for r in rows)] or list(range(8, 22))
    hours = list(range(min(hours), max(hours) + 1))
    left, cell, row, top = 230, (900 - 230) / len(hours), 28, 22
    height = top + row * len(rows) + 4
    top_value = max([max(r[1]) for r in rows] + [1])
    body = [f'<text x="{left + (h - hours[0]) * cell + cell / 2:.1f}" y="15" text-anchor="middle" '
            f'fill="#4a5560">{h:02d}</text>' for h in hours]  # fmt: skip
    for n, (label, values) in enumerate(rows):
        y = top + n * row
        body.append(f'<text x="{left - 8}" y="{y + 19}" text-anchor="end" fill="#1a1f24" font-size="15">'
                    f"{escape(label)}</text>")  # fmt: skip
        for h in hours:
            share = values[h] / top_value
            body.append(
                f'<rect x="{left + (h - hours[0]) * cell:.1f}" y="{y}" width="{cell - 2:.1f}" height="{row - 3}" '
                f'fill="#a8141c" fill-opacity="{0.06 + 0.94 * share:.2f}"><title>{escape(label)} {h:02d}:00 '
                f"{values[h]}</title></rect>"
            )
    return _svg(900, int(height), title, body)
