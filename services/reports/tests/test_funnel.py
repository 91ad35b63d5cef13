"""The funnel from deal events: entries, moves on, wins, conversions and days in stage, exactly."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.deals import (
    DealCreated,
    DealStageChanged,
    PipelineCreated,
    PipelineUpdated,
    StageState,
    StageTransition,
)
from crm_kernel.events import IntegrationEvent
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.main import create_app
from crm_reports.settings import ReportsSettings

PIPELINE = str(uuid.uuid4())
A, B, C, WON, LOST = (str(uuid.uuid4()) for _ in range(5))
# stage -> (position, probability, kind)
STAGES = {
    A: (0, "10", "open"),
    B: (1, "30", "open"),
    C: (2, "60", "open"),
    WON: (3, "100", "won"),
    LOST: (4, "0", "lost"),
}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


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


def journey(deal_id: str, owner: str, steps: list[tuple[str, float]]) -> list[IntegrationEvent]:
    """The events of a deal visiting `steps` (stage, days after T0) in order."""
    events: list[IntegrationEvent] = []
    previous: tuple[str, datetime] | None = None
    for version, (stage, days) in enumerate(steps, start=1):
        at = T0 + timedelta(days=days)
        position, probability, kind = STAGES[stage]
        move = StageTransition(
            history_id=str(uuid.uuid4()),
            pipeline_id=PIPELINE,
            to_stage_id=stage,
            to_position=position,
            to_probability=probability,
            to_kind=kind,
            entered_at=at.isoformat(),
            from_stage_id=previous[0] if previous else None,
            from_entered_at=previous[1].isoformat() if previous else None,
            left_at=at.isoformat() if previous else None,
            direction="forward" if previous else "created",
            reason="move" if previous else "create",
        )
        status = {"won": "won", "lost": "lost"}.get(kind, "open")
        fields: dict[str, Any] = {
            "id": deal_id,
            "title": "D",
            "pipeline_id": PIPELINE,
            "stage_id": stage,
            "owner_id": owner,
            "amount": "100.00",
            "currency": "RUB",
            "status": status,
            "stage_entered_at": at.isoformat(),
            "closed_at": at.isoformat() if status != "open" else None,
            "version": version,
            "created_at": T0.isoformat(),
            "updated_at": at.isoformat(),
            "transition": move,
        }
        events.append(DealStageChanged(**fields) if previous else DealCreated(**fields))
        previous = (stage, at)
    return events


async def funnel(client: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    response = await client.get(
        "/reports/funnel",
        params={"pipeline_id": PIPELINE},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return {s["stage_id"]: s for s in response.json()["stages"]}


async def test_funnel_counts_skips_losses_and_days_exactly(
    reports: httpx.AsyncClient, bus: Bus
) -> None:
    rep, other = str(uuid.uuid4()), str(uuid.uuid4())
    pipeline = PipelineCreated(
        id=PIPELINE,
        name="P",
        is_default=False,
        version=1,
        created_at=T0.isoformat(),
        updated_at=T0.isoformat(),
        stages=[
            StageState(id=s, name=f"S{p}", position=p, probability=prob, kind=k)
            for s, (p, prob, k) in STAGES.items()
        ],
    )
    skipper = journey(str(uuid.uuid4()), other, [(A, 0), (C, 2), (WON, 3)])  # skips B, won
    loser = journey(str(uuid.uuid4()), other, [(A, 0), (B, 1), (LOST, 4)])
    waiting = journey(str(uuid.uuid4()), rep, [(A, 0)])
    await bus.publish(pipeline.envelope())
    # The loser's events arrive newest first: a stay is closed before it is opened.
    for event in [*skipper, *reversed(loser), *waiting]:
        await bus.publish(event.envelope())
    admin = issue_token(Role.ADMIN)

    expected = {
        # stage: entered, moved_on, won, to_next, to_won, avg days, median days
        A: (3, 2, 1, 0.6667, 0.3333, 1.5, 1.5),
        B: (1, 1, 0, 0.0, 0.0, 3.0, 3.0),  # a loss is not "further on"
        C: (1, 1, 1, 1.0, 1.0, 1.0, 1.0),
        WON: (1, 0, 1, 0.0, 1.0, None, None),
        LOST: (1, 0, 0, 0.0, 0.0, None, None),
    }

    def figures(stages: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
        keys = (
            "entered",
            "moved_on",
            "won",
            "conversion_to_next",
            "conversion_to_won",
            "avg_days_in_stage",
            "median_days_in_stage",
        )
        return {stage: tuple(row[k] for k in keys) for stage, row in stages.items()}

    async def as_expected() -> dict[str, dict[str, Any]] | None:
        stages = await funnel(reports, admin)
        return stages if figures(stages) == expected else None

    try:
        stages = await wait_until(as_expected, message="the funnel of every event")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {figures(await funnel(reports, admin))}") from exc
    assert [s["position"] for s in stages.values()] == [0, 1, 2, 3, 4]
    # A rep sees only their own deal's stays.
    mine = await funnel(reports, issue_token(Role.SALES_REP, rep))
    assert mine[A]["entered"] == 1 and mine[A]["moved_on"] == 0 and mine[C]["entered"] == 0
    as_csv = await reports.get(
        "/reports/funnel",
        params={"pipeline_id": PIPELINE, "format": "csv"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text.lstrip("\ufeff"))))
    assert [(r["stage_id"], int(r["entered"])) for r in rows] == [
        (s, e[0]) for s, e in expected.items()
    ]

    # The lost stage becomes an open one: the prepared all-time figures follow the new
    # layout (the loser's stay in B now went "further on").
    reshaped = pipeline.model_dump() | {
        "version": 2,
        "change": "stage_updated",
        "stages": [
            StageState(
                id=s, name=f"S{p}", position=p, probability=prob, kind="open" if s == LOST else k
            )
            for s, (p, prob, k) in STAGES.items()
        ],
    }
    await bus.publish(PipelineUpdated(**reshaped).envelope())
    expected[B] = (1, 1, 0, 1.0, 0.0, 3.0, 3.0)
    await wait_until(as_expected, message="the funnel after the stage became open")
