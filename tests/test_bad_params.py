"""Hole 5 of #11: every bad parameter is a 4xx JSON error, on the API and on the pages, never a 500."""

from __future__ import annotations

import pytest

from tests.webkit import assert_error, auth

BAD_API_QUERIES = [
    "/api/v1/schedule?from=9999-12-31",
    "/api/v1/schedule?from=0001-01-01",
    "/api/v1/schedule?from=2026-11-28&to=9999-12-31",
    "/api/v1/reports/weekly?date=9999-12-31",
    "/api/v1/reports/weekly?date=0001-01-01",
    "/api/v1/reports/daily?date=9999-12-31",
    "/api/v1/reports/monthly?month=9999-12",
    "/api/v1/reports/monthly?month=0001-01",
    "/api/v1/reports/annual?year=9999",
    "/api/v1/reports/annual?year=0001",
    "/api/v1/reports/annual?year=%D9%A2%D9%A0%D9%A2%D9%A6",  # Arabic-Indic digits: isdigit() but not a year
    "/api/v1/reports/weekly.csv?date=9999-12-31",
    "/api/v1/reports/annual.xlsx?year=9999",
    "/api/v1/daily?date=9999-12-31",
    "/api/v1/dead-letters?limit=%C2%B2",  # "²"
    "/api/v1/adjustments?limit=%C2%B2",
    "/api/v1/audit?limit=%C2%B2",
    "/api/v1/audit?before=%C2%B2",
]


@pytest.mark.parametrize("url", BAD_API_QUERIES)
def test_a_bad_query_parameter_is_a_400_json_error(client, tokens, url):
    body = assert_error(client.get(url, headers=auth(tokens["admin"])), 400)
    assert body["error"] == "bad_request"


@pytest.mark.parametrize(
    "url",
    [
        "/reports/weekly?date=9999-12-31",
        "/reports/daily?date=0001-01-01",
        "/reports/annual?year=9999",
        "/reports/annual?year=0001",
        "/reports/monthly?month=0001-01",
        "/reports/monthly?month=9999-12",
    ],
)
def test_a_report_page_outside_the_calendar_is_a_400_naming_the_range(client, tokens, url):
    body = assert_error(client.get(url, headers=auth(tokens["viewer"])), 400)
    assert body["error"] == "bad_request"
    assert "2000-01-01" in body["detail"] and "2199-12-31" in body["detail"]


@pytest.mark.parametrize(
    ("url", "prev", "nxt"),
    [
        ("/reports/daily?date=2000-01-01", "date=2000-01-01", "date=2000-01-02"),
        ("/reports/daily?date=2199-12-31", "date=2199-12-30", "date=2199-12-31"),
        ("/reports/annual?year=2000", "year=2000", "year=2001"),
        ("/reports/monthly?month=2199-12", "month=2199-11", "month=2199-12"),
    ],
)
def test_the_report_links_stay_inside_the_calendar(client, tokens, url, prev, nxt):
    page = client.get(url, headers=auth(tokens["viewer"]))
    assert page.status_code == 200
    links = page.get_data(as_text=True)
    kind = url.split("?")[0]
    assert f'href="{kind}?{prev}"' in links and f'href="{kind}?{nxt}"' in links


@pytest.mark.parametrize("url", ["/schedule?from=9999-12-31", "/schedule?from=0001-01-01"])
def test_the_schedule_page_refuses_dates_outside_the_calendar(client, tokens, url):
    assert_error(client.get(url, headers=auth(tokens["viewer"])), 400)


def test_the_edges_of_the_calendar_still_answer(client, tokens):
    headers = auth(tokens["admin"])
    for url in (
        "/api/v1/reports/weekly?date=2000-01-01",
        "/api/v1/reports/weekly?date=2199-12-31",
        "/api/v1/reports/annual?year=2199",
        "/reports/daily?date=2000-01-01",
        "/reports/annual?year=2199",
        "/schedule?from=2199-12-31",
    ):
        assert client.get(url, headers=headers).status_code == 200, url


DEEP = "[" * 30_000 + "]" * 30_000


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/api/v1/rooms/book-bar/adjust"),
        ("POST", "/api/v1/schedule"),
        ("PUT", "/api/v1/schedule/x"),
        ("PATCH", "/api/v1/schedule/x"),
    ],
)
def test_a_json_body_nested_30000_deep_is_a_400(client, tokens, method, url):
    headers = {**auth(tokens["admin"]), "Content-Type": "application/json"}
    body = assert_error(client.open(url, method=method, data=DEEP, headers=headers), 400)
    assert body["error"] == "bad_request"


def test_a_schedule_form_with_a_superscript_capacity_is_refused(client, tokens):
    form = {"title": "x", "kind": "class", "room": "hall", "date": "2026-11-28", "start": "10:00",
            "end": "11:00", "capacity": "²"}  # fmt: skip
    response = client.post("/schedule", data=form, headers=auth(tokens["staff"]))
    assert response.status_code == 422
