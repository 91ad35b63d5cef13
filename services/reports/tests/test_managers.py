"""Per-manager results: what each owner created, won and lost, revenue and cycle, visible only to whom it may be."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.deals import DealCreated, DealLost, DealWon, StageTransition
from crm_kernel.contracts.gateway import UserCreated
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.main import create_app
from crm_reports.settings import ReportsSettings

PIPELINE, STAGE = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
async def reports(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            yield client


def deal(
    kind: type[DealCreated] | type[DealWon] | type[DealLost],
    owner: str,
    *,
    amount: str,
    currency: str,
    created: str,
    closed: str | None,
    status: str,
    version: int,
    deal_id: str | None = None,
) -> Any:
    move = StageTransition(
        history_id=str(uuid.uuid4()),
        pipeline_id=PIPELINE,
        to_stage_id=STAGE,
        to_position=0,
        to_probability="10",
        to_kind="open",
        entered_at=created,
        direction="created",
        reason="create",
    )
    return kind(
        id=deal_id or str(uuid.uuid4()),
        title="D",
        pipeline_id=PIPELINE,
        stage_id=STAGE,
        owner_id=owner,
        amount=amount,
        currency=currency,
        status=status,
        closed_at=closed,
        stage_entered_at=created,
        version=version,
        created_at=created,
        updated_at=closed or created,
        transition=move,
    )


async def test_each_manager_gets_exact_results_and_a_rep_sees_only_their_own(
    reports: httpx.AsyncClient, nats_url: str
) -> None:
    anna, boris, team = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    head = str(uuid.uuid4())
    events = [
        UserCreated(
            id=head,
            email="h@example.com",
            full_name="H",
            role="head_of_sales",
            team_ids=[team],
            is_active=True,
            version=1,
        ),
        UserCreated(
            id=anna,
            email="a@example.com",
            full_name="A",
            role="sales_rep",
            team_ids=[team],
            is_active=True,
            version=1,
        ),
        # Anna: won 1000 RUB in 10 days, won 500 RUB in 20 days, lost one; one still open.
        deal(
            DealWon,
            anna,
            amount="1000.00",
            currency="RUB",
            created="2026-03-01T00:00:00+00:00",
            closed="2026-03-11T00:00:00+00:00",
            status="won",
            version=3,
        ),
        deal(
            DealWon,
            anna,
            amount="500.00",
            currency="RUB",
            created="2026-03-01T00:00:00+00:00",
            closed="2026-03-21T00:00:00+00:00",
            status="won",
            version=3,
        ),
        deal(
            DealLost,
            anna,
            amount="900.00",
            currency="RUB",
            created="2026-03-02T00:00:00+00:00",
            closed="2026-03-05T00:00:00+00:00",
            status="lost",
            version=2,
        ),
        deal(
            DealCreated,
            anna,
            amount="10.00",
            currency="RUB",
            created="2026-03-03T00:00:00+00:00",
            closed=None,
            status="open",
            version=1,
        ),
        # Boris: one won in USD.
        deal(
            DealWon,
            boris,
            amount="250.50",
            currency="USD",
            created="2026-03-01T00:00:00+00:00",
            closed="2026-03-02T12:00:00+00:00",
            status="won",
            version=2,
        ),
    ]
    bus = await Bus.connect(nats_url, name="test")
    try:
        for event in events:
            await bus.publish(event.envelope())
    finally:
        await bus.close()
    admin = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}

    async def report(headers: dict[str, str]) -> dict[str, dict[str, Any]]:
        got = await reports.get("/reports/managers", headers=headers)
        assert got.status_code == 200, got.text
        return {m["owner_id"]: m for m in got.json()["managers"]}

    async def complete() -> bool:
        rows = await report(admin)
        return rows.get(anna, {}).get("deals_created") == 4 and boris in rows

    await wait_until(complete, message="all deals applied")
    rows = await report(admin)
    assert rows[anna] | {"owner_id": None} == {
        "owner_id": None,
        "deals_created": 4,
        "deals_won": 2,
        "deals_lost": 1,
        "win_rate": 0.6667,
        "revenue_won": [{"currency": "RUB", "amount": "1500.00", "weighted": None}],
        "average_deal_size": [{"currency": "RUB", "amount": "750.00", "weighted": None}],
        "median_cycle_days": 15.0,
        "activities": {},
        "overdue_tasks": 0,
        # Lead mix (no source: "none"): 1000 RUB is alone in its band and won (rate 1);
        # 500 won and 900 lost share a band (rate 0.5): expected 1 + 2 x 0.5 = 2 wins.
        "expected_wins": 2.0,
        "wins_vs_expected": 1.0,
        # The base won 3 of 4: as expected, Anna's adjusted rate is the base's.
        "mix_adjusted_win_rate": 0.75,
    }
    assert rows[boris]["revenue_won"] == [{"currency": "USD", "amount": "250.50", "weighted": None}]
    assert rows[boris]["median_cycle_days"] == 1.5
    # A rep sees only their own line; the head of sales sees the team (Anna), not Boris.
    assert list(
        await report({"Authorization": f"Bearer {issue_token(Role.SALES_REP, boris)}"})
    ) == [boris]

    async def head_sees_anna() -> bool:
        return list(
            await report({"Authorization": f"Bearer {issue_token(Role.HEAD_OF_SALES, head)}"})
        ) == [anna]

    await wait_until(head_sees_anna, message="team visibility from the directory")
    march = await reports.get(
        "/reports/managers", params={"from": "2026-03-15T00:00:00Z"}, headers=admin
    )
    late = {m["owner_id"]: m for m in march.json()["managers"]}
    assert late[anna]["deals_won"] == 1 and late[anna]["deals_created"] == 0 and boris not in late
