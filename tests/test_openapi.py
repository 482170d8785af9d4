"""The OpenAPI document (#11) is served, names every route of the app and no other, and tells the truth about each
route's authentication: a role-gated API route answers 401 (JSON) without credentials and 403 with too low a role;
a page redirects to /login. tests/test_schemathesis.py fuzzes the live app from the same document."""

from __future__ import annotations

import re

import pytest

from footfall.server.web.openapi import document
from tests.webkit import assert_error, auth

ROLES = ("viewer", "staff", "admin")
METHODS = {"get", "post", "put", "patch", "delete"}
# Flask's own static files are not part of the API: nginx may serve them instead.
UNDOCUMENTED_ENDPOINTS = {"static"}


def app_operations(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def documented(doc) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item if method in METHODS}


@pytest.fixture
def doc(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def test_the_document_is_openapi_3_1_and_served_to_anyone(doc, site):
    assert doc["openapi"] == "3.1.0"
    assert doc == document([r.id for r in site.rooms])


def test_every_route_is_documented_and_every_documented_route_exists(app, doc):
    routes, paths = app_operations(app), documented(doc)
    assert routes - paths == set(), "routes missing from server/web/openapi.py"
    assert paths - routes == set(), "documented operations the app does not have"


def test_every_ref_resolves_and_every_operation_has_a_role_and_its_errors(doc):
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for pointer in set(refs(doc)):
        node = doc
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part]  # KeyError: a dangling $ref
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "detail"] and error["additionalProperties"] is False
    for path, method in documented(doc):
        operation = doc["paths"][path][method]
        assert operation["x-role"] in ("anyone", *ROLES), (path, method)
        if operation["x-role"] != "anyone":
            assert operation["security"], (path, method)
            if not operation.get("x-page"):
                assert operation["responses"]["401"] == {"$ref": "#/components/responses/401"}, (path, method)
        if operation["x-role"] in ("staff", "admin"):
            assert "403" in operation["responses"], (path, method)


def concrete(path: str, site) -> str:
    values = {"room": site.rooms[0].id, "kind": "daily", "item_id": "none", "alert_id": "1"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_each_operation_demands_the_role_it_documents(client, doc, tokens, site):
    for path, method in sorted(documented(doc)):
        operation = doc["paths"][path][method]
        role, url = operation["x-role"], concrete(path, site)
        if role == "anyone":
            continue
        call = getattr(client, method)
        anonymous = call(url)
        if operation.get("x-page"):
            assert anonymous.status_code in (302, 403), (method, url)  # 403: a form post without CSRF token
            if method == "get":
                assert anonymous.headers["Location"].startswith("/login?next="), (method, url)
        else:
            assert_error(anonymous, 401)
        lower = ROLES[ROLES.index(role) - 1] if role != "viewer" else None
        if lower is not None:
            too_low = call(url, headers=auth(tokens[lower]))
            assert too_low.status_code == 403, (method, url, lower)
            if not operation.get("x-page"):
                assert_error(too_low, 403)
        allowed = call(url, headers=auth(tokens[role]), **({"json": {}} if method != "get" else {}))
        assert allowed.status_code not in (401, 403), (method, url, role, allowed.data[:200])
        assert str(allowed.status_code) in operation["responses"], (method, url, allowed.status_code)


def test_the_comparison_sees_a_route_added_without_docs(app, site):
    doc = document([r.id for r in site.rooms])
    app.add_url_rule("/api/v1/rooms/<room>/undocumented", "undocumented", lambda room: "", methods=["DELETE"])
    assert app_operations(app) - documented(doc) == {("/api/v1/rooms/{room}/undocumented", "delete")}
