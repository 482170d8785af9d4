"""Who may do what: staff sessions (login page) and bearer tokens, roles viewer < staff < admin.

Passwords are stored as werkzeug scrypt hashes, tokens as sha256 hashes (the plain token is shown once, by
`footfall token create`). API routes use `@require(role)` and answer JSON 401/403; pages redirect to /login.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import logging
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from footfall.clock import utcnow
from footfall.server.store import Store
from footfall.server.web import audit
from footfall.server.web.context import web

logger = logging.getLogger(__name__)

ROLES = {"viewer": 1, "staff": 2, "admin": 3}
MIN_PASSWORD = 8
# Endpoints that also take `?token=` (GET only, viewer rights at most): the lobby screen and what it reads,
# because a TV browser cannot send headers and EventSource cannot either.
QUERY_TOKEN_ENDPOINTS = {"dashboard.screen", "api.stream", "api.rooms", "api.daily"}

# The user's session version when the session was made; a cookie whose version is not the user's current one is
# refused (store.end_sessions, and every put_user, bump it).
SESSION_VERSION_KEY = "_sv"

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


class ApiError(Exception):
    """An error answered as JSON {"error", "detail"} with `status`."""

    def __init__(self, status: int, error: str, detail: str = "", headers: dict[str, str] | None = None):
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


class WebUser(UserMixin):
    """A logged-in person (`id` = username) or a token (`id` = "token:<sha256>", `name` = its label)."""

    def __init__(self, ident: str, role: str, name: str | None = None, session_version: int = 0):
        self.id = ident
        self.role = role
        self.name = name or ident
        self.session_version = session_version

    @property
    def is_token(self) -> bool:
        return self.id.startswith("token:")

    @property
    def audit_name(self) -> str:
        return f"token:{self.name}" if self.is_token else self.name

    def has(self, role: str) -> bool:
        return ROLES.get(self.role, 0) >= ROLES[role]


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(8))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- used by the CLI ------------------------------------------------------------------------------


def create_token(store: Store, role: str, label: str) -> str:
    """Store a new API token and return it in plain text (only its sha256 is kept)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    store.add_token(hash_token(token), role, label, utcnow())
    logger.info("created a %s token %r", role, label)
    return token


def add_user(store: Store, username: str, password: str, role: str) -> None:
    """Create a user, or change an existing user's password and role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or not username.strip() or username.startswith("token:") or len(username) > 64:
        raise ValueError("username must be 1..64 characters and not start with 'token:'")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    store.put_user(username.strip(), generate_password_hash(password), role, utcnow())
    logger.info("saved user %r with role %s", username, role)


def authenticate(store: Store, username: str, password: str) -> WebUser | None:
    row = store.get_user(username)
    if row is None:
        check_password_hash(_dummy_hash(), password)  # same time whether or not the user exists
        return None
    if not check_password_hash(row["password_hash"], password):
        return None
    return WebUser(row["username"], row["role"], session_version=row["session_version"])


# --- Flask-Login loaders ------------------------------------------------------------------------


@login_manager.user_loader
def _load_session_user(ident: str) -> WebUser | None:
    store = web().store
    if ident.startswith("token:"):
        found = store.token_role(ident.removeprefix("token:"))
        return WebUser(ident, found[0], found[1]) if found else None
    row = store.get_user(ident)
    if row is None or session.get(SESSION_VERSION_KEY) != row["session_version"]:
        return None  # removed, or logged out / new password / new role since this cookie was made
    return WebUser(row["username"], row["role"], session_version=row["session_version"])


@login_manager.request_loader
def _load_request_user(req) -> WebUser | None:
    header = req.headers.get("Authorization", "")
    query_token = False
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            g.auth_problem = "Authorization must be 'Bearer <token>'"
            return None
        token = token.strip()
    elif req.method == "GET" and req.endpoint in QUERY_TOKEN_ENDPOINTS and req.args.get("token"):
        token, query_token = req.args["token"], True
    else:
        return None
    found = web().store.token_role(hash_token(token))
    if found is None:
        g.auth_problem = "unknown or revoked token"
        return None
    role, label = found
    if query_token and ROLES[role] > ROLES["viewer"]:
        role = "viewer"  # a token in a URL ends up in logs and history: read-only
    return WebUser("token:" + hash_token(token), role, label)


@login_manager.unauthorized_handler
def _unauthorized():
    if is_api_request():
        raise ApiError(
            401,
            "unauthorized",
            g.get("auth_problem") or "log in or send 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": 'Bearer realm="footfall"'},
        )
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def is_api_request() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/metrics")


# --- decorators ---------------------------------------------------------------------------------


def require(role: str) -> Callable:
    """API routes: JSON 401 without valid credentials, 403 when the role is too low."""
    if role not in ROLES:
        raise ValueError(role)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has(role):
                raise ApiError(403, "forbidden", f"needs the {role} role (you have {current_user.role})")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def require_page(role: str) -> Callable:
    """Pages: redirect to the login page, or 403 when the role is too low."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


# --- login page ---------------------------------------------------------------------------------


class LoginLimiter:
    """At most `max_failures` failed logins per client address within `window_s` seconds."""

    def __init__(self) -> None:
        self.failures: dict[str, collections.deque] = {}

    def blocked(self, key: str, now: float, max_failures: int, window_s: float) -> bool:
        times = self.failures.get(key)
        if not times:
            return False
        while times and times[0] < now - window_s:
            times.popleft()
        if not times:
            del self.failures[key]
        return len(times) >= max_failures

    def fail(self, key: str, now: float) -> None:
        self.failures.setdefault(key, collections.deque(maxlen=1000)).append(now)
        if len(self.failures) > 10_000:  # bounded memory under a spray of addresses
            self.failures.pop(next(iter(self.failures)))

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    limiter: LoginLimiter = current_app.extensions["footfall_login_limiter"]
    cfg = current_app.config
    error = None
    status = 200
    if request.method == "POST":
        now = web().now().timestamp()
        key = request.remote_addr or "?"
        if limiter.blocked(key, now, cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_WINDOW_S"]):
            error, status = "login.too_many", 429
        else:
            user = authenticate(
                web().store, request.form.get("username", "").strip(), request.form.get("password", "")
            )
            if user is None:
                limiter.fail(key, now)
                error, status = "login.failed", 401
                logger.info("failed login for %r from %s", request.form.get("username", ""), key)
                _audit("login_failed", request.form.get("username", "")[:64], actor="anonymous")
            else:
                limiter.clear(key)
                lang = session.get("lang")
                session.clear()
                if lang:
                    session["lang"] = lang
                session.permanent = True
                session[SESSION_VERSION_KEY] = user.session_version
                login_user(user)
                logger.info("user %r logged in", user.id)
                _audit("login", user.id)
                return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, next=request.args.get("next", "")), status


def _audit(action: str, target: str, **kwargs: Any) -> None:
    audit.log_web(action, target, **kwargs)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated and not current_user.is_token:
        _audit("logout", current_user.id)
        web().store.end_sessions(current_user.id)  # also a copy of this cookie, and the user's other sessions
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    app.extensions["footfall_login_limiter"] = LoginLimiter()
