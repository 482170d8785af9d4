"""Nobody reads or changes what they should not: every route's authentication and role (found by walking
app.url_map, so new routes are covered without editing this file), CSRF, security headers, the audit log, and
property-based fuzzing of the HTTP API and of ingest's MQTT input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footfall.config import load_toml
from footfall.server import audit
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import ROLES, add_user, create_token
from footfall.site import site_from_dict
from tests.conftest import EXAMPLE_SITE

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
# The OpenAPI document describes the API, not its data (docs/api.md): anyone may read it.
PUBLIC = {"static", "auth.login", "healthz", "api.healthz_v1", "openapi.openapi_json"}
# Endpoints whose minimum role must not silently drop (any other route gets the structural checks only).
AT_LEAST = {
    "api.adjust": "staff",
    "api.adjustments": "staff",
    "api.dead_letters": "staff",
    "audit.api_audit": "admin",
    "audit.page_audit": "admin",
    "schedule.api_create": "staff",
    "schedule.api_update": "staff",
    "schedule.api_delete": "staff",
}
ARGS = {"room": "hall", "kind": "daily", "item_id": "x"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def load_site(data_dir: Path):
    site = site_from_dict(load_toml(EXAMPLE_SITE), str(EXAMPLE_SITE))
    return dataclasses.replace(site, server=dataclasses.replace(site.server, data_dir=str(data_dir)))


@pytest.fixture
def site(tmp_path):
    return load_site(tmp_path / "data")


@pytest.fixture
def store(site):
    s = SqliteStore(site.db_path)
    yield s
    s.close()


@pytest.fixture
def app(site, store):
    return create_app(site, store, None, {"TESTING": True, "FOOTFALL_NOW": lambda: NOW, "SSE_PING_S": 0})


@pytest.fixture
def tokens(store):
    return {role: create_token(store, role, f"{role}-token") for role in ROLES}


def routes(app, api: bool):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or rule.rule.startswith("/api/") != api:
            continue
        url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: ARGS.get(m.group(1), "x"), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def call(client, method: str, url: str, headers: dict | None = None):
    kwargs = {"json": {}} if method in UNSAFE else {}
    response = client.open(url, method=method, headers=headers or {}, **kwargs)
    response.close()  # the SSE stream is never read
    return response


def test_every_api_route_refuses_anonymous_and_lower_roles(app, tokens):
    client = app.test_client()
    checked = 0
    for endpoint, method, url in routes(app, api=True):
        response = call(client, method, url)
        assert response.status_code == 401, (endpoint, method, response.status_code)
        assert response.json["error"] == "unauthorized"
        allowed = []
        for role in sorted(ROLES, key=ROLES.get):
            status = call(client, method, url, {"Authorization": f"Bearer {tokens[role]}"}).status_code
            assert status != 401, (endpoint, role)
            if status == 403:
                assert not allowed, f"{endpoint} refuses {role} but allows {allowed}"
            else:
                allowed.append(role)
        assert "admin" in allowed, endpoint
        lowest = allowed[0]
        if endpoint in AT_LEAST:
            assert ROLES[lowest] >= ROLES[AT_LEAST[endpoint]], f"{endpoint} is open to {lowest}"
        checked += 1
    assert checked >= 10


def test_every_page_needs_a_login(app, store):
    client = app.test_client()
    for endpoint, method, url in routes(app, api=False):
        response = call(client, method, url)
        if endpoint == "prometheus_metrics":  # a scraper's route: a token or nothing, no login page
            assert response.status_code == 401, endpoint
        elif method in UNSAFE:
            assert response.status_code in (302, 403), (endpoint, method)  # no CSRF token: refused first
        else:
            assert response.status_code == 302 and "/login" in response.headers["Location"], endpoint
    add_user(store, "viewer1", "password-1", "viewer")
    login(client, "viewer1", "password-1")
    assert client.get("/admin/audit").status_code == 403


def page_token(client, url: str = "/login") -> str:
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def login(client, username: str, password: str):
    token = page_token(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_forms_and_session_posts_need_the_csrf_token(app, store, tokens):
    add_user(store, "wang", "password-1", "staff")
    client = app.test_client()
    client.get("/login")
    refused = client.post("/login", data={"username": "wang", "password": "password-1"})
    assert refused.status_code == 403
    assert client.get("/").status_code == 302  # not logged in
    wrong = client.post("/login", data={"username": "wang", "password": "password-1", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert login(client, "wang", "password-1").status_code == 302
    assert client.get("/").status_code == 200
    body = {"occupancy": 3, "reason": "counted"}
    no_header = client.post("/api/v1/rooms/hall/adjust", json=body)
    assert no_header.status_code == 403 and no_header.json["error"] == "csrf"
    token = page_token(client, "/")
    ok = client.post("/api/v1/rooms/hall/adjust", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200
    # A bearer token is not a cookie: no CSRF token needed.
    bearer = app.test_client().post(
        "/api/v1/rooms/hall/adjust", json=body, headers={"Authorization": f"Bearer {tokens['staff']}"}
    )
    assert bearer.status_code == 200
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_security_headers_and_cookie(app, store, tokens):
    client = app.test_client()
    page = client.get("/login")
    api = client.get("/api/v1/rooms", headers={"Authorization": f"Bearer {tokens['viewer']}"})
    for response in (page, api):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"]
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    site = app.extensions["footfall"].site
    secure_site = dataclasses.replace(site, server=dataclasses.replace(site.server, cookie_secure=True))
    secure = create_app(secure_site, store, None, {"TESTING": True})
    response = secure.test_client().get("/login")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_logins_and_adjustments_are_audited_for_admins(app, store, tokens):
    add_user(store, "wang", "password-1", "staff")
    client = app.test_client()
    token = page_token(client)
    client.post("/login", data={"username": "wang", "password": "nope-nope", "csrf_token": token})
    login(client, "wang", "password-1")
    client.post(
        "/api/v1/rooms/hall/adjust",
        json={"occupancy": 2, "reason": "by hand"},
        headers={"X-CSRF-Token": page_token(client, "/")},
    )
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    rows = app.test_client().get("/api/v1/audit", headers=admin).json
    assert [(r["action"], r["actor"], r["target"]) for r in rows] == [
        ("adjust", "wang", "hall"),
        ("login", "wang", "wang"),
        ("login_failed", "anonymous", "wang"),
    ]
    assert rows[0]["detail"] == {"old": 0, "new": 2, "reason": "by hand"}
    only = app.test_client().get("/api/v1/audit?action=login&limit=5", headers=admin).json
    assert [r["action"] for r in only] == ["login"]
    assert app.test_client().get("/api/v1/audit?limit=0", headers=admin).status_code == 400
    audit.record(store, "cli:root", "user_add", "li", detail={"role": "viewer"})
    assert audit.entries(store, limit=1)[0]["detail"] == {"role": "viewer"}


# --- fuzzing ------------------------------------------------------------------------------------

SEGMENT = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_app():
    with tempfile.TemporaryDirectory() as tmp:
        site = load_site(Path(tmp))
        store = SqliteStore(site.db_path)
        app = create_app(site, store, None, {"TESTING": True, "FOOTFALL_NOW": lambda: NOW, "SSE_PING_S": 0})
        admin = create_token(store, "admin", "fuzz")
        yield app, admin
        store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_api_requests_never_fail_with_5xx(fuzz_app, data):
    app, admin = fuzz_app
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/") and r.endpoint != "api.stream"]
    rule = data.draw(st.sampled_from(rules))
    method = data.draw(st.sampled_from(sorted(rule.methods - {"HEAD", "OPTIONS"})))
    url = rule.rule
    for name in rule.arguments:
        value = data.draw(st.sampled_from([ARGS.get(name, "x"), "hall"]) | SEGMENT.filter(bool))
        url = re.sub(rf"<(?:[^:>]+:)?{name}>", lambda _m, v=value: v, url)
    query = data.draw(st.dictionaries(st.sampled_from(["date", "limit", "before", "action", "from", "to", "x"]),
                                      st.text(max_size=12), max_size=3))  # fmt: skip
    kwargs: dict = {"query_string": query}
    body = data.draw(st.one_of(st.none(), JSON, st.binary(max_size=200)))
    if method in UNSAFE and body is not None:
        if isinstance(body, bytes):
            kwargs.update(
                data=body, content_type=data.draw(st.sampled_from(["application/json", "text/plain"]))
            )
        else:
            kwargs["json"] = body
    headers = data.draw(
        st.sampled_from([{"Authorization": f"Bearer {admin}"}, {}, {"Authorization": "Bearer x"}])
    )
    response = app.test_client().open(url, method=method, headers=headers, **kwargs)
    assert response.status_code < 500, (method, url, kwargs, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert set(response.json) == {"error", "detail"}


def event_payloads():
    valid = st.fixed_dictionaries(
        {
            "v": st.just(1),
            "id": st.text(min_size=1, max_size=64),
            "seq": st.integers(min_value=0, max_value=2**40),
            "ts": st.sampled_from(["2026-11-28T01:30:12.345Z", "2099-01-01T00:00:00.000Z", "nope"]),
            "type": st.sampled_from(["crossing", "checkin", "other"]),
            "direction": st.sampled_from(["in", "out", "up"]),
            "count": st.integers(-2, 25),
            "purpose": st.sampled_from(["affairs", "class", "x"]),
            "adults": st.integers(-1, 60),
            "children": st.integers(-1, 60),
        }
    )
    mutated = st.tuples(
        valid, st.dictionaries(st.sampled_from(["v", "id", "seq", "ts", "count", "clock"]), JSON)
    )
    return st.one_of(
        st.binary(max_size=300),
        JSON.map(lambda v: json.dumps(v).encode()),
        valid.map(lambda d: json.dumps(d).encode()),
        mutated.map(lambda pair: json.dumps({**pair[0], **pair[1]}).encode()),
        st.just(b"x" * 5000),
    )


TOPICS = st.one_of(
    st.sampled_from(["door-main", "kiosk-hall", "nobody", "door-book-bar"]).map(
        lambda d: f"footfall/dongsi/device/{d}/event"
    ),
    st.sampled_from(["footfall/other/device/door-main/event", "footfall/dongsi/room/hall/state", "x"]),
    st.text(max_size=40).map(lambda t: f"footfall/dongsi/{t}"),
)


@pytest.fixture(scope="module")
def ingest_store():
    with tempfile.TemporaryDirectory() as tmp:
        site = load_site(Path(tmp))
        store = SqliteStore(site.db_path)
        yield Ingestor(site, store), store
        store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(TOPICS, event_payloads()), min_size=1, max_size=5))
def test_fuzzed_mqtt_payloads_end_as_events_or_dead_letters(ingest_store, batch):
    ingestor, store = ingest_store
    before = store.metrics()
    ingestor.process([Incoming(topic, payload) for topic, payload in batch], now=NOW)
    after = store.metrics()
    handled = sum(after.get(k, 0) - before.get(k, 0) for k in ("events", "duplicates", "dead_letters"))
    assert handled == len(batch)
    assert store.count("events") == after.get("events", 0)
    # Beyond a device's dead-letter rate, rejected messages are counted (dropped) but not stored (#10).
    kept = (
        after.get("dead_letters", 0)
        - after.get("dead_letters_dropped", 0)
        - after.get("dead_letters_pruned", 0)
    )
    assert store.count("dead_letters") == kept
