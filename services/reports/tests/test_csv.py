"""Reports as CSV: the same figures, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.http import csv_response
from crm_reports.main import create_app
from crm_reports.settings import ReportsSettings


def parse(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_cells_that_would_run_as_formulas_are_quoted() -> None:
    response = csv_response(
        ["name", "amount"],
        [
            {"name": '=HYPERLINK("http://evil")', "amount": "-12.50"},
            {"name": "@SUM(A1)", "amount": None},
            {"name": "Анна", "amount": "+7"},
        ],
        "x",
    )
    rows = parse(response.body)
    assert rows == [
        ["name", "amount"],
        ['\'=HYPERLINK("http://evil")', "-12.50"],
        ["'@SUM(A1)", ""],
        ["Анна", "+7"],
    ]
    assert response.headers["content-disposition"] == 'attachment; filename="x.csv"'


@pytest.fixture
async def reports(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            yield client


async def test_overview_as_csv_has_the_json_figures(
    reports: httpx.AsyncClient, nats_url: str
) -> None:
    bus = await Bus.connect(nats_url, name="test")
    try:
        for _ in range(2):
            await bus.publish(
                ContactCreated(
                    id=str(uuid.uuid4()),
                    first_name="A",
                    owner_id=str(uuid.uuid4()),
                    version=1,
                    created_at="2026-03-01T10:00:00+00:00",
                    updated_at="2026-03-01T10:00:00+00:00",
                ).envelope()
            )
    finally:
        await bus.close()
    admin = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}

    async def counted() -> bool:
        got = await reports.get("/reports/overview", headers=admin)
        return got.json()["contacts"] == 2

    await wait_until(counted, message="two contacts")
    response = await reports.get("/reports/overview", params={"format": "csv"}, headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = parse(response.content)
    assert rows[0] == ["metric", "currency", "value"]
    assert ["contacts", "", "2"] in rows and ["deals_won", "", "0"] in rows
    bad = await reports.get("/reports/overview", params={"format": "xlsx"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "format"
