"""District reports: daily, monthly and annual visits per site and in total (district viewers), and one site's
(its staff too), as pages, JSON, CSV and XLSX. The exports go through the site reports' writers
(server/reports.py), so a name typed like a formula arrives as text here too."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from footfall.server import reports as site_reports
from footfall.server.district_web import data, store
from footfall.server.district_web.auth import login_required, require_district, require_site
from footfall.server.web.auth import ApiError

bp = Blueprint("district_reports", __name__)
KINDS = ("daily", "monthly", "annual")
PARAM = {"daily": "date", "monthly": "month", "annual": "year"}
KIND_WORDS = {"daily": "日报", "monthly": "月报", "annual": "年报"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _report(kind: str, site: str | None) -> dict[str, Any]:
    if kind not in KINDS:
        raise ApiError(404, "not_found", f"no {kind!r} report (one of {', '.join(KINDS)})")
    if site is None:
        require_district()
    else:
        require_site(site)
    now = current_app.config["FOOTFALL_NOW"]()
    listed = [s for s in data.sites(store().conn) if site is None or s["site"] == site]
    if site is not None and not listed:
        raise ApiError(404, "not_found", f"no site {site!r}")
    # "This period" by the local day of the first site (a district's sites share one zone in practice).
    today = data.site_today(listed[0], now) if listed else now.date()
    try:
        anchor = site_reports.parse_anchor(kind, request.args.get(PARAM[kind]), today)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"{PARAM[kind]}: {exc}") from None
    start, end = site_reports.period_bounds(kind, anchor)
    rep = data.report(store().conn, kind, start, end, now, only=site)
    rep["period"]["label"] = {"daily": start.isoformat(), "monthly": start.strftime("%Y-%m"),
                              "annual": str(start.year)}[kind]  # fmt: skip
    rep["scope"] = {"site": site, "name": listed[0]["name"] if site else "全区"}
    return rep


def tables(rep: dict[str, Any]) -> list[site_reports.Table]:
    """The report as (name, header, rows) tables: CSV sections and XLSX sheets."""
    sites = [[s["site"], s["name"], s["visits"], s["days"], s["average_daily_visits"]] for s in rep["sites"]]
    if rep["scope"]["site"] is None:
        sites.append(["合计", f"{rep['total']['sites']} 个站点", rep["total"]["visits"], None, None])
    return [
        ("站点汇总", ["站点编号", "站点名称", "服务人次", "有数据天数", "日均服务人次"], sites),
        ("每日服务人次", ["日期", "服务人次"], [[d["date"], d["visits"]] for d in rep["days"]]),
        (
            "各室进入人次",
            ["站点编号", "房间编号", "房间名称", "进入人次", "离开人次"],
            [[r["site"], r["room"], r["name"], r["entries"], r["exits"]] for r in rep["rooms"]],
        ),
    ]


def _filename(rep: dict[str, Any], ext: str) -> str:
    scope = rep["scope"]["site"] or "district"
    return f"footfall-{scope}-{rep['period']['kind']}-{rep['period']['label']}.{ext}"


def _download(rep: dict[str, Any], ext: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{_filename(rep, ext)}"'}
    if ext == "csv":
        out = io.StringIO()
        site_reports.write_tables_csv(tables(rep), out)
        return Response("\ufeff" + out.getvalue(), mimetype="text/csv", headers=headers)  # BOM: Excel's UTF-8
    out_bytes = io.BytesIO()
    site_reports.write_tables_xlsx(tables(rep), out_bytes)
    return Response(out_bytes.getvalue(), mimetype=XLSX, headers=headers)


# --- JSON and downloads -------------------------------------------------------------------------------


@bp.get("/api/v1/reports/<kind>")
@login_required
def api_district(kind: str):
    return jsonify(_report(kind, None))


@bp.get("/api/v1/reports/<kind>.csv", defaults={"ext": "csv"})
@bp.get("/api/v1/reports/<kind>.xlsx", defaults={"ext": "xlsx"})
@login_required
def api_district_file(kind: str, ext: str):
    return _download(_report(kind, None), ext)


@bp.get("/api/v1/sites/<site>/reports/<kind>")
@login_required
def api_site(site: str, kind: str):
    return jsonify(_report(kind, site))


@bp.get("/api/v1/sites/<site>/reports/<kind>.csv", defaults={"ext": "csv"})
@bp.get("/api/v1/sites/<site>/reports/<kind>.xlsx", defaults={"ext": "xlsx"})
@login_required
def api_site_file(site: str, kind: str, ext: str):
    return _download(_report(kind, site), ext)


# --- pages --------------------------------------------------------------------------------------------


def _neighbours(kind: str, rep: dict[str, Any]) -> tuple[str, str]:
    start, end = (dt.date.fromisoformat(rep["period"][k]) for k in ("start", "end"))
    before = max(start - dt.timedelta(days=1), site_reports.FIRST_DAY)
    after = min(end + dt.timedelta(days=1), site_reports.LAST_DAY)
    fmt = {"daily": "%Y-%m-%d", "monthly": "%Y-%m", "annual": "%Y"}[kind]
    return before.strftime(fmt), after.strftime(fmt)


def _page(kind: str, site: str | None):
    if kind not in KINDS:
        return redirect(url_for(request.endpoint, kind="monthly", **({"site": site} if site else {})))
    rep = _report(kind, site)
    prev, nxt = _neighbours(kind, rep)
    scope = {"site": site} if site else {}
    here = "district_reports.site_page" if site else "district_reports.district_page"
    files = "district_reports.api_site_file" if site else "district_reports.api_district_file"
    this = {PARAM[kind]: rep["period"]["start"] if kind == "daily" else rep["period"]["label"]}
    links = {
        "tabs": {k: url_for(here, kind=k, **scope) for k in KINDS},
        "prev": url_for(here, kind=kind, **scope, **{PARAM[kind]: prev}),
        "next": url_for(here, kind=kind, **scope, **{PARAM[kind]: nxt}),
        "csv": url_for(files, kind=kind, ext="csv", **scope, **this),
        "xlsx": url_for(files, kind=kind, ext="xlsx", **scope, **this),
        "sites": {
            s["site"]: url_for("district_reports.site_page", site=s["site"], kind=kind, **this)
            for s in rep["sites"]
        },
    }
    return render_template(
        "district/reports.html",
        rep=rep,
        kind=kind,
        kinds=KINDS,
        kind_words=KIND_WORDS,
        links=links,
        site=site,
    )


@bp.get("/reports")
@login_required
def index():
    if current_user.is_district:
        return redirect(url_for("district_reports.district_page", kind="monthly"))
    return redirect(url_for("district_reports.site_page", site=current_user.site, kind="monthly"))


@bp.get("/reports/<kind>")
@login_required
def district_page(kind: str):
    return _page(kind, None)


@bp.get("/sites/<site>/reports/<kind>")
@login_required
def site_page(site: str, kind: str):
    return _page(kind, site)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
