"""Stalled deals: the current stay of each open deal against its stage's p75 of finished stays."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.models import DealFact, StageFact, StageStay
from crm_reports.scope import Filters
from crm_reports.stalled.schemas import StalledDeal, StalledRead
from crm_reports.stats import DAY, percentile


async def stalled(
    *, db: Database, principal: Principal, filters: Filters, now: datetime | None = None
) -> StalledRead:
    """Open deals in a stage for longer than the stage's usual (p75) stay, longest over first."""
    now = now or datetime.now(UTC)
    finished = select(StageStay.stage_id, StageStay.entered_at, StageStay.left_at).where(
        StageStay.left_at.is_not(None), *filters.pipeline(StageStay.pipeline_id)
    )
    open_deals = (
        select(
            DealFact.id,
            DealFact.owner_id,
            DealFact.pipeline_id,
            DealFact.stage_id,
            StageFact.name,
            DealFact.stage_entered_at,
        )
        .outerjoin(StageFact, StageFact.id == DealFact.stage_id)
        .where(
            *filters.owners(principal, DealFact.owner_id),
            *filters.pipeline(DealFact.pipeline_id),
            DealFact.status == "open",
            DealFact.stage_entered_at.is_not(None),
        )
    )
    stays: dict[str, list[float]] = defaultdict(list)
    async with db.session() as session:
        for stage, entered_at, left_at in cast(Any, (await session.execute(finished)).all()):
            stays[stage].append((left_at - entered_at).total_seconds() / DAY)
        candidates = cast(Any, (await session.execute(open_deals)).all())
    usual = {stage: percentile(days, 0.75) for stage, days in stays.items()}
    result = []
    for deal_id, owner, pipeline, stage, name, entered_at in candidates:
        limit = usual.get(stage)
        days = (now - entered_at).total_seconds() / DAY
        if limit is not None and days > limit:
            result.append(
                StalledDeal(
                    deal_id=deal_id,
                    owner_id=owner,
                    pipeline_id=pipeline,
                    stage_id=stage,
                    stage_name=name,
                    days_in_stage=round(days, 3),
                    usual_days=limit,
                )
            )
    result.sort(key=lambda d: d.usual_days - d.days_in_stage)
    return StalledRead(deals=result)
