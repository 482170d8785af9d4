"""Request guards of the kiosk's local web server, checked before any route:

- **Host**: only the configured host names (`[kiosk] allowed_hosts`, and the listen host). A page on another site
  that re-points its own name at 127.0.0.1 (DNS rebinding) sends its own name as Host and is refused.
- **Origin**: a POST that says where it comes from must come from this kiosk's own page (same scheme, host, port);
  `Sec-Fetch-Site: cross-site` / `same-site` and `Origin: null` are refused too.
- **CSRF token**: every POST carries `X-CSRF-Token` with the token of this process. The page gets it embedded; any
  other local client (the demo's simulated visitors) reads it from `GET /api/csrf`. A form or a bodyless POST from
  another site cannot set the header, and cannot read the token (no CORS, and the Host check stops rebinding).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlsplit

from flask import Flask, jsonify, request

logger = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def host_name(host: str) -> str:
    """The name part of a Host header or netloc, lower-case, without port, brackets or a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".")


class Guard:
    def __init__(self, allowed_hosts: tuple[str, ...]):
        self.allowed = frozenset(host_name(h) for h in allowed_hosts)
        self.token = secrets.token_urlsafe(32)  # per process: a restart makes the page fetch a new one

    def host_problem(self, host: str) -> str | None:
        if host_name(host) not in self.allowed:
            return f"host {host_name(host)[:100]!r} is not one of this kiosk's allowed_hosts"
        return None

    def origin_problem(self, origin: str | None, fetch_site: str | None, host: str) -> str | None:
        if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
            return f"a {fetch_site[:20]} request"
        if origin is None:
            return None  # not a browser, or a same-origin request that carries none: the token decides
        parts = urlsplit(origin.strip())
        if origin.strip() == "null" or parts.scheme not in ("http", "https"):
            return "an opaque origin"
        if parts.netloc.lower() != host.strip().lower():
            return f"origin {origin[:100]!r} is not this kiosk"
        return None

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


def install(app: Flask, guard: Guard) -> None:
    """Check every request's Host, and every POST's origin and CSRF token, before its route runs."""

    @app.before_request
    def check_request():
        host = request.host or ""
        problem = guard.host_problem(host)
        if problem:
            logger.warning("refused %s %s: %s", request.method, request.path[:100], problem)
            return jsonify({"error": "bad_host", "detail": problem}), 400
        if request.method in SAFE_METHODS:
            return None
        problem = guard.origin_problem(
            request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"), host
        )
        if problem is None and not guard.token_ok(request.headers.get(CSRF_HEADER)):
            problem = f"missing or wrong {CSRF_HEADER} header (GET /api/csrf gives the token)"
        if problem:
            logger.warning("refused %s %s: %s", request.method, request.path[:100], problem)
            return jsonify({"error": "csrf", "detail": problem}), 403
        return None

    @app.get("/api/csrf")
    def csrf_token():
        return jsonify({"token": guard.token, "header": CSRF_HEADER})
