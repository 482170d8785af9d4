"""District roles: a district viewer (`district`) sees every site; a site's staff (`site`, with its site id) see
only their own site, its rooms and its reports. Accounts live in the district store's `users` table
(`footfall district user add`), passwords as werkzeug scrypt hashes.

A session remembers the user and a fingerprint of the password hash: a new password or role ends older sessions.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from footfall.server.district_web import store
from footfall.server.web.auth import ApiError, LoginLimiter, _dummy_hash
from footfall.topics import NAME_RE

ROLES = ("district", "site")
MIN_PASSWORD = 8
FINGERPRINT_KEY = "_pw"

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


class DistrictUser(UserMixin):
    def __init__(self, name: str, role: str, site: str | None, fingerprint: str):
        self.id = self.name = name
        self.role, self.site, self.fingerprint = role, site, fingerprint
        self.is_token = False  # the shared templates ask

    def can_see(self, site: str) -> bool:
        return self.role == "district" or self.site == site

    @property
    def is_district(self) -> bool:
        return self.role == "district"


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def add_user(conn, name: str, password: str, role: str, site: str | None) -> None:
    """Create a user, or set an existing one's password, role and site."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if (role == "site") != bool(site):
        raise ValueError("a site user needs --site; a district user has none")
    if site is not None and not NAME_RE.match(site):
        raise ValueError(f"bad site id {site!r}")
    if not name or not name.strip() or len(name) > 64:
        raise ValueError("the user name must be 1..64 characters")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    with conn.transaction():
        if (
            site is not None
            and conn.execute("SELECT 1 FROM sites WHERE site = %s", (site,)).fetchone() is None
        ):
            raise ValueError(f"no site {site!r} in the district store (footfall district add-site first)")
        conn.execute(
            "INSERT INTO users (name, password_hash, role, site) VALUES (%s, %s, %s, %s) ON CONFLICT (name)"
            " DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, site = excluded.site",
            (name.strip(), generate_password_hash(password), role, site),
        )


def _load(name: str) -> tuple[DistrictUser, str] | None:
    """The user and their password hash."""
    row = store().conn.execute("SELECT name, password_hash, role, site FROM users WHERE name = %s", (name,))
    found = row.fetchone()
    store().conn.commit()
    if found is None:
        return None
    return DistrictUser(found[0], found[2], found[3], _fingerprint(found[1])), found[1]


@login_manager.user_loader
def _load_session_user(name: str) -> DistrictUser | None:
    loaded = _load(name)
    if loaded is None or session.get(FINGERPRINT_KEY) != loaded[0].fingerprint:
        return None  # removed, or a new password or role since this cookie was made
    return loaded[0]


@login_manager.unauthorized_handler
def _unauthorized():
    if request.path.startswith("/api/"):
        raise ApiError(401, "unauthorized", "log in first")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return view(*args, **kwargs)

    return wrapped


def require_site(site: str) -> None:
    """403 unless the user may see `site` (a site's staff see only their own)."""
    if not current_user.can_see(site):
        if is_api_request():
            raise ApiError(403, "forbidden", f"you may see site {current_user.site!r} only")
        abort(403)


def require_district() -> None:
    if not current_user.is_district:
        if is_api_request():
            raise ApiError(403, "forbidden", "needs the district role")
        abort(403)


@bp.route("/login", methods=["GET", "POST"])
def login():
    limiter: LoginLimiter = current_app.extensions["district_login_limiter"]
    error, status = None, 200
    if request.method == "POST":
        now = current_app.config["FOOTFALL_NOW"]().timestamp()
        key = request.remote_addr or "?"
        name, password = request.form.get("username", "").strip(), request.form.get("password", "")
        loaded = _load(name) if name else None
        if limiter.blocked(key, now, 10, 600):
            error, status = "登录失败次数过多，请十分钟后再试。", 429
        elif loaded is None or not check_password_hash(loaded[1], password):
            if loaded is None:
                check_password_hash(_dummy_hash(), password)  # same time whether or not the user exists
            limiter.fail(key, now)
            error, status = "用户名或密码不正确，请重试。", 401
        else:
            limiter.clear(key)
            session.clear()
            session.permanent = True
            session[FINGERPRINT_KEY] = loaded[0].fingerprint
            login_user(loaded[0])
            return redirect(_safe_next(request.args.get("next")))
    return render_template("district/login.html", error=error), status


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never another host) after logging in."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("district.index")


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def init_app(app) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    app.extensions["district_login_limiter"] = LoginLimiter()
    app.register_blueprint(bp)
