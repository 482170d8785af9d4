"""The district dashboard (every site, sortable) and each site's own view (its rooms and devices), as pages and
as JSON under /api/v1/sites."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from footfall.levels import level_words
from footfall.server.district_web import data, store
from footfall.server.district_web.auth import login_required, require_site
from footfall.server.web.auth import ApiError

bp = Blueprint("district", __name__)
COLUMNS = {  # sort key -> column heading
    "name": "站点",
    "occupancy": "当前在馆人数",
    "entries_today": "今日进馆人次",
    "devices_online": "设备在线",
    "alerts": "告警",
}
DEFAULT_DESCENDING = {
    "name": False,
    "occupancy": True,
    "entries_today": True,
    "devices_online": True,
    "alerts": True,
}


def _now():
    return current_app.config["FOOTFALL_NOW"]()


def _sort() -> tuple[str, bool]:
    key = request.args.get("sort", "name")
    if key not in data.SORT_KEYS:
        raise ApiError(400, "bad_request", f"sort must be one of {', '.join(data.SORT_KEYS)}")
    order = request.args.get("order")
    if order not in (None, "asc", "desc"):
        raise ApiError(400, "bad_request", "order must be asc or desc")
    return key, DEFAULT_DESCENDING[key] if order is None else order == "desc"


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {
        k: sum(r[k] for r in rows)
        for k in ("occupancy", "entries_today", "devices_online", "devices_total", "alerts")
    }


@bp.get("/")
@login_required
def index():
    if not current_user.is_district:
        return redirect(url_for("district.site_page", site=current_user.site))
    key, descending = _sort()
    rows = data.sort_sites(data.overview(store().conn, _now()), key, descending)
    return render_template(
        "district/dashboard.html",
        rows=rows,
        totals=_totals(rows),
        columns=COLUMNS,
        sort=key,
        descending=descending,
        user=current_user,
    )


def _one_site(site: str) -> dict[str, Any]:
    require_site(site)  # before looking it up: a site's staff learn nothing about other sites
    found = data.overview(store().conn, _now(), only=site)
    if not found:
        if request.path.startswith("/api/"):
            raise ApiError(404, "not_found", f"no site {site!r}")
        abort(404)
    return {
        **found[0],
        "rooms": data.site_rooms(store().conn, site),
        "devices": data.site_devices(store().conn, site),
    }


@bp.get("/sites/<site>")
@login_required
def site_page(site: str):
    return render_template(
        "district/site.html", s=_one_site(site), levels=level_words("zh-CN", ""), user=current_user
    )


@bp.get("/api/v1/sites")
@login_required
def api_sites():
    key, descending = _sort()
    only = None if current_user.is_district else current_user.site
    return jsonify(data.sort_sites(data.overview(store().conn, _now(), only=only), key, descending))


@bp.get("/api/v1/sites/<site>")
@login_required
def api_site(site: str):
    return jsonify(_one_site(site))


def local_time(ts: str | None) -> str:
    """A stored time as Beijing wall-clock 'MM-DD HH:MM:SS' (district offices read local time)."""
    if not ts:
        return "—"
    return dt.datetime.fromisoformat(ts).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M:%S")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_filter(local_time, "localtime")
