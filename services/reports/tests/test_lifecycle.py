"""Lifecycle buckets by calendar month, whatever day of the month the period starts on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crm_kernel.auth import Role
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process
from crm_reports.main import create_app
from crm_reports.settings import ReportsSettings


@pytest.fixture
async def reports(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            yield client


async def test_monthly_lifecycle_from_the_31st_keeps_month_ends(
    reports: httpx.AsyncClient,
) -> None:
    # A period from the 31st (or the 29th before a short February) once answered 500.
    response = await reports.get(
        "/reports/lifecycle",
        params={"bucket": "month", "from": "2026-01-31T00:00:00Z", "to": "2026-04-30T00:00:00Z"},
        headers={"Authorization": f"Bearer {issue_token(Role.ADMIN)}"},
    )
    assert response.status_code == 200, response.text
    assert [(b["bucket_start"][:10], b["bucket_end"][:10]) for b in response.json()["buckets"]] == [
        ("2026-01-31", "2026-02-28"),
        ("2026-02-28", "2026-03-31"),
        ("2026-03-31", "2026-04-30"),
    ]
