"""Funnel from the stage stays read model (every stay from the deal events), visible deals only."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import aliased

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_reports.funnel.schemas import FunnelRead, FunnelStage
from crm_reports.models import DealFact, StageFact, StageStay

DAY = 86400.0


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def funnel(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    period_from: datetime | None,
    period_to: datetime | None,
    owner_id: str | None,
) -> FunnelRead:
    """Per stage in order: entered, moved on, won, conversions, average and median days in stage."""
    conditions = [StageStay.pipeline_id == pipeline_id, owner_filter(principal, DealFact.owner_id)]
    if period_from:
        conditions.append(StageStay.entered_at >= period_from)
    if period_to:
        conditions.append(StageStay.entered_at < period_to)
    if owner_id:
        conditions.append(DealFact.owner_id == owner_id)
    stays = select(StageStay).join(DealFact, DealFact.id == StageStay.deal_id).where(*conditions)
    here = stays.subquery()
    later, later_stage, this_stage = aliased(StageStay), aliased(StageFact), aliased(StageFact)
    reached_later = (
        select(later.deal_id)
        .join(later_stage, later_stage.id == later.stage_id)
        .where(
            later.deal_id == here.c.deal_id,
            later.entered_at > here.c.entered_at,
            later_stage.position > this_stage.position,
            later_stage.kind != "lost",
        )
        .exists()
    )
    counts = (
        select(
            here.c.stage_id,
            func.count(distinct(here.c.deal_id)),
            func.count(distinct(here.c.deal_id)).filter(here.c.left_at.is_not(None)),
            func.count(distinct(here.c.deal_id)).filter(DealFact.status == "won"),
            func.count(distinct(here.c.deal_id)).filter(reached_later),
        )
        .join(DealFact, DealFact.id == here.c.deal_id)
        .outerjoin(this_stage, this_stage.id == here.c.stage_id)
        .group_by(here.c.stage_id)
    )
    closed = select(here.c.stage_id, here.c.entered_at, here.c.left_at).where(
        here.c.left_at.is_not(None)
    )
    async with db.session() as session:
        stages = (
            (
                await session.execute(
                    select(StageFact)
                    .where(StageFact.pipeline_id == pipeline_id)
                    .order_by(StageFact.position)
                )
            )
            .scalars()
            .all()
        )
        by_stage = {row[0]: row[1:] for row in (await session.execute(counts)).all()}
        durations: dict[str, list[float]] = defaultdict(list)
        # Durations are few per stage and period; medians are not portable SQL.
        for stage_id, entered_at, left_at in (await session.execute(closed)).all():
            durations[stage_id].append((left_at - entered_at).total_seconds() / DAY)
    result = []
    for stage in stages:
        entered, moved_on, won, onward = by_stage.get(stage.id, (0, 0, 0, 0))
        days = durations.get(stage.id, [])
        result.append(
            FunnelStage(
                stage_id=stage.id,
                name=stage.name,
                position=stage.position,
                kind=stage.kind,
                entered=entered,
                moved_on=moved_on,
                won=won,
                conversion_to_next=_share(onward, entered),
                conversion_to_won=_share(won, entered),
                avg_days_in_stage=round(statistics.fmean(days), 3) if days else None,
                median_days_in_stage=round(statistics.median(days), 3) if days else None,
            )
        )
    return FunnelRead(pipeline_id=pipeline_id, stages=result)
