"""Browser-facing protections: CSRF tokens, security headers and the session cookie settings.

CSRF: a per-session random token (synchronizer token, no extra package). Every state-changing request
(POST/PUT/PATCH/DELETE) made with a session cookie must carry it, either as the form field `csrf_token`
(templates: `<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">`) or as the header
`X-CSRF-Token` (the dashboard's JavaScript reads it from `<meta name="csrf-token">`). Exempt: requests
authenticated by `Authorization: Bearer <token>` (a browser cannot be made to send that header cross-site), and
anonymous API requests, which `require()` answers 401 anyway. Tests may set CSRF_ENABLED = False.

Headers: CSP with frame-ancestors 'none', X-Frame-Options, X-Content-Type-Options, Referrer-Policy,
Permissions-Policy, and HSTS when the session cookie is Secure (a TLS deployment).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable

from flask import Flask, Response, abort, current_app, request, session
from flask_login import current_user

from footfall.server.web.auth import ApiError, is_api_request
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)

SESSION_KEY = "_csrf"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
TRUE_WORDS = ("1", "true", "yes", "on")


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def rotate_csrf_token() -> None:
    """A new token (after login, so a token planted before login is worthless)."""
    session.pop(SESSION_KEY, None)


def exempt(view: Callable) -> Callable:
    """Mark a view as not needing a CSRF token (a machine endpoint with its own authentication)."""
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _bearer_authenticated() -> bool:
    """True when the user came from the Authorization header, not from the session cookie."""
    return (
        bool(request.headers.get("Authorization"))
        and current_user.is_authenticated
        and ("_user_id" not in session)
    )


def check_csrf() -> None:
    if not current_app.config.get("CSRF_ENABLED", True) or request.method in SAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "_csrf_exempt", False):
        return  # 404/405 follow; nothing runs
    if _bearer_authenticated():
        return
    if is_api_request() and not current_user.is_authenticated:
        return  # require() answers 401
    expected = session.get(SESSION_KEY)
    sent = request.headers.get(HEADER)
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = request.form.get(FORM_FIELD)
    if expected and sent and secrets.compare_digest(str(expected), str(sent)):
        return
    logger.warning("CSRF check failed on %s %s from %s", request.method, request.path, request.remote_addr)
    if is_api_request():
        raise ApiError(403, "csrf", f"missing or wrong CSRF token (send the {HEADER} header)")
    abort(403, description="missing or wrong CSRF token: reload the page and try again")


def set_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", API_CSP if is_api_request() else PAGE_CSP)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def cookie_secure(site: SiteConfig, env: dict[str, str] | None = None) -> bool:
    """`[server] cookie_secure` when the site schema has it, else $FOOTFALL_SERVER_COOKIE_SECURE."""
    value = site.server.cookie_secure
    if value is not None:
        return bool(value)
    env = os.environ if env is None else env
    return env.get("FOOTFALL_SERVER_COOKIE_SECURE", "").lower() in TRUE_WORDS


def trust_proxies(app: Flask, hops: int) -> None:
    """Behind `hops` reverse proxies (nginx: docs/install.md), take the client address, scheme and host from the
    last `hops` X-Forwarded-* entries, so the login limiter counts visitors, not the proxy. 0 (the default)
    trusts no header: a client could otherwise pick its own address with X-Forwarded-For."""
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def init_app(app: Flask, site: SiteConfig | None = None) -> None:
    """Register after the other blueprints. Session cookie: HttpOnly, SameSite=Lax, Secure behind TLS."""
    app.config.setdefault("CSRF_ENABLED", True)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    if site is not None and cookie_secure(site):
        app.config["SESSION_COOKIE_SECURE"] = True
    # PERMANENT_SESSION_LIFETIME ([server] session_minutes) is an idle timeout: the cookie is renewed on each
    # request (SESSION_REFRESH_EACH_REQUEST) and expires that long after the last one.
    app.config.setdefault("SESSION_REFRESH_EACH_REQUEST", True)
    if site is not None:
        trust_proxies(app, site.server.trusted_proxies)
    app.before_request(check_csrf)
    app.after_request(set_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
