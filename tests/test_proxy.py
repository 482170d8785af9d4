"""Hole 6 of #11: behind a reverse proxy the login limiter counts visitors (`[server] trusted_proxies`), and
without one, X-Forwarded-For is ignored."""

from __future__ import annotations

import dataclasses
import http.client
import re
import shutil
import ssl
import subprocess
import threading
import urllib.parse
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from footfall.demo.broker import free_port, wait_for_port
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.live import LocalHub
from tests.conftest import ROOT
from tests.test_deploy import make_certificates
from tests.webkit import NOW


def app_with(site, hops: int):
    site = dataclasses.replace(site, server=dataclasses.replace(site.server, trusted_proxies=hops))
    config = {"TESTING": True, "CSRF_ENABLED": False, "FOOTFALL_NOW": lambda: NOW, "LOGIN_MAX_FAILURES": 3}
    return create_app(site, SqliteStore(site.db_path), LocalHub(), config)


def fail_login(client, forwarded_for: str) -> int:
    form = {"username": "nobody", "password": "wrong password"}
    return client.post("/login", data=form, headers={"X-Forwarded-For": forwarded_for}).status_code


def test_behind_one_proxy_each_visitor_has_its_own_login_limit(site):
    client = app_with(site, 1).test_client()
    assert [fail_login(client, "203.0.113.1") for _ in range(4)] == [401, 401, 401, 429]
    assert fail_login(client, "203.0.113.2") == 401  # another visitor behind the same proxy
    # nginx appends the address it saw; whatever the visitor put before it is not trusted.
    assert fail_login(client, "198.51.100.9, 203.0.113.1") == 429


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(site):
    client = app_with(site, 0).test_client()
    statuses = [fail_login(client, f"203.0.113.{n}") for n in range(4)]
    assert statuses == [401, 401, 401, 429]  # one socket address, one limit, whatever the header says


def test_the_audit_log_records_the_visitors_address_not_the_proxys(site):
    app = app_with(site, 1)
    fail_login(app.test_client(), "203.0.113.7")
    rows = app.extensions["footfall"].store.conn.execute(
        "SELECT ip FROM audit_log WHERE action='login_failed'"
    )
    assert [r["ip"] for r in rows] == ["203.0.113.7"]


# --- the shipped nginx front, for real ---------------------------------------------------------------------


def nginx_config(tmp_path, https: int, http: int, upstream: int) -> Path:
    """deploy/nginx/footfall.conf with this test's ports and certificate, inside a minimal nginx.conf."""
    text = (ROOT / "deploy" / "nginx" / "footfall.conf").read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "/etc/footfall/tls/web.crt": str(tmp_path / "certs" / "server.crt"),
        "/etc/footfall/tls/web.key": str(tmp_path / "certs" / "server.key"),
    }
    for old, new in replacements.items():
        assert old in text, f"footfall.conf no longer has {old!r}"
        text = text.replace(old, new)
    text = re.sub(r"^\s*listen \[::\]:\d+.*$", "", text, flags=re.M)  # no IPv6 in every CI container
    site_conf = tmp_path / "footfall.conf"
    site_conf.write_text(text)
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"daemon off;\nuser root;\nworker_processes 1;\npid {tmp_path / 'nginx.pid'};\n"
        f"error_log {tmp_path / 'nginx-error.log'} warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n access_log off;\n client_body_temp_path {temp}/body;\n proxy_temp_path {temp}/proxy;\n"
        f" fastcgi_temp_path {temp}/fastcgi;\n uwsgi_temp_path {temp}/uwsgi;\n scgi_temp_path {temp}/scgi;\n"
        f" include {site_conf};\n}}\n"
    )
    return main


def https_post(port: int, ca: str, source: str, path: str, form: dict[str, str]) -> int:
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, source_address=(source, 0), context=context, timeout=10
    )
    try:
        body = urllib.parse.urlencode(form)
        conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.integration
def test_behind_the_shipped_nginx_with_tls_visitors_have_their_own_login_limits(tmp_path, site):
    nginx = shutil.which("nginx") or pytest.fail("nginx is not installed: .ci/run installs it")
    (tmp_path / "certs").mkdir()
    make_certificates(tmp_path / "certs")
    app = app_with(site, 1)
    upstream = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    https, http_port = free_port(), free_port()
    conf = nginx_config(tmp_path, https, http_port, upstream.server_port)
    check = subprocess.run([nginx, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([nginx, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        assert wait_for_port(https), "nginx did not listen"
        ca = str(tmp_path / "certs" / "ca.crt")
        wrong = {"username": "nobody", "password": "wrong password"}
        # Two visitors on different addresses (the whole of 127/8 is loopback).
        first = [https_post(https, ca, "127.0.0.2", "/login", wrong) for _ in range(4)]
        assert first == [401, 401, 401, 429]
        assert https_post(https, ca, "127.0.0.3", "/login", wrong) == 401  # not locked out by the first
        rows = app.extensions["footfall"].store.conn.execute("SELECT DISTINCT ip FROM audit_log ORDER BY ip")
        assert [r["ip"] for r in rows] == ["127.0.0.2", "127.0.0.3"]
        redirect = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        redirect.request("GET", "/login", headers={"Host": "footfall.local"})
        answer = redirect.getresponse()
        assert answer.status == 301 and answer.getheader("Location") == "https://footfall.local/login"
    finally:
        proc.terminate()
        proc.wait(10)
        upstream.shutdown()
