"""Deal figures in the overview: newest version wins whatever the order, weighted by stage probability."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.deals import (
    DealCreated,
    DealStageChanged,
    DealWon,
    PipelineCreated,
    StageState,
    StageTransition,
)
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.main import create_app
from crm_reports.settings import ReportsSettings

PIPELINE = str(uuid.uuid4())
FIRST, PROPOSAL, WON = (str(uuid.uuid4()) for _ in range(3))
STAGES = {FIRST: ("10", "open", 0), PROPOSAL: ("50", "open", 1), WON: ("100", "won", 2)}


@pytest.fixture
async def reports(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            yield client


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


def pipeline() -> PipelineCreated:
    return PipelineCreated(
        id=PIPELINE,
        name="Sales",
        is_default=True,
        version=1,
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
        stages=[
            StageState(id=s, name=s[:4], position=p, probability=prob, kind=kind)
            for s, (prob, kind, p) in STAGES.items()
        ],
    )


def deal_fields(
    deal_id: str,
    owner: str,
    stage: str,
    version: int,
    amount: str,
    currency: str = "RUB",
    status: str = "open",
    closed_at: str | None = None,
) -> dict[str, object]:
    return {
        "id": deal_id,
        "title": "Deal",
        "pipeline_id": PIPELINE,
        "stage_id": stage,
        "owner_id": owner,
        "amount": amount,
        "currency": currency,
        "status": status,
        "closed_at": closed_at,
        "stage_entered_at": "2026-02-01T00:00:00+00:00",
        "version": version,
        "created_at": "2026-02-01T00:00:00+00:00",
        "updated_at": "2026-02-01T00:00:00+00:00",
    }


def transition(stage: str) -> StageTransition:
    probability, kind, position = STAGES[stage]
    return StageTransition(
        history_id=str(uuid.uuid4()),
        pipeline_id=PIPELINE,
        to_stage_id=stage,
        to_position=position,
        to_probability=probability,
        to_kind=kind,
        entered_at="2026-02-01T00:00:00+00:00",
        direction="forward",
        reason="move",
    )


async def overview(client: httpx.AsyncClient, token: str, **params: str) -> dict[str, object]:
    response = await client.get(
        "/reports/overview", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_open_pipeline_is_weighted_and_newest_version_wins(
    reports: httpx.AsyncClient, bus: Bus
) -> None:
    rep, other = str(uuid.uuid4()), str(uuid.uuid4())
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    await bus.publish(pipeline().envelope())
    # Deal a: created at the first stage, then moved to proposal (v2) -- published out of order.
    await bus.publish(
        DealStageChanged(
            **deal_fields(a, rep, PROPOSAL, 2, "1000.00"), transition=transition(PROPOSAL)
        ).envelope()
    )
    await bus.publish(
        DealCreated(
            **deal_fields(a, rep, FIRST, 1, "1000.00"), transition=transition(FIRST)
        ).envelope()
    )
    await bus.publish(
        DealCreated(
            **deal_fields(b, other, FIRST, 1, "200.00", "USD"), transition=transition(FIRST)
        ).envelope()
    )
    await bus.publish(
        DealWon(
            **deal_fields(
                c, rep, WON, 3, "300.00", status="won", closed_at="2026-03-10T00:00:00+00:00"
            ),
            transition=transition(WON),
        ).envelope()
    )
    admin = issue_token(Role.ADMIN)

    async def settled() -> bool:
        body = await overview(reports, admin)
        return body["open_deals"] == 2 and body["deals_won"] == 1

    await wait_until(settled, message="deal facts applied")
    body = await overview(reports, admin)
    assert body["open_pipeline"] == [
        {"currency": "RUB", "amount": "1000.00", "weighted": "500.00"},  # proposal stage, 50 %
        {"currency": "USD", "amount": "200.00", "weighted": "20.00"},
    ]
    assert body["won_amount"] == [{"currency": "RUB", "amount": "300.00", "weighted": None}]
    mine = await overview(reports, issue_token(Role.SALES_REP, rep))
    assert mine["open_deals"] == 1 and mine["deals_won"] == 1
    assert [t["currency"] for t in mine["open_pipeline"]] == ["RUB"]  # type: ignore[index,union-attr]
    outside = await overview(reports, admin, **{"from": "2026-04-01T00:00:00Z"})
    assert outside["deals_won"] == 0 and outside["won_amount"] == []
