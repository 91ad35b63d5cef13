"""Funnel from the stage stays read model (every stay from the deal events), visible deals only."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import case, distinct, func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.funnel.prepared import all_time_counts, all_time_medians
from crm_reports.funnel.schemas import FunnelRead, FunnelStage
from crm_reports.models import DealFact, StageFact, StageStay
from crm_reports.scope import Filters
from crm_reports.stats import days_between, median_by


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _days(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None


async def funnel(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    filters: Filters,
) -> FunnelRead:
    """Per stage in order: entered, moved on, won, conversions, average and median days in stage.

    One pass over the visible stays with window functions (no query per stay):
    a stay "reached a stage further on" when a later stay of its deal is in a
    non-lost stage of a higher position; medians come from row numbers.
    """
    visible = [StageStay.pipeline_id == pipeline_id, *filters.owners(principal, DealFact.owner_id)]
    if filters.period_from or filters.period_to:
        # Deals with a stay entered in the period; their later stays count for "further on".
        in_period = select(StageStay.deal_id).where(
            StageStay.pipeline_id == pipeline_id, *filters.within(StageStay.entered_at)
        )
        visible.append(StageStay.deal_id.in_(in_period))
    onward = case((StageFact.kind != "lost", StageFact.position))
    stays = (
        select(
            StageStay.deal_id,
            StageStay.stage_id,
            StageStay.entered_at,
            StageStay.left_at,
            DealFact.status,
            StageFact.position,
            func.max(onward)
            .over(
                partition_by=StageStay.deal_id,
                order_by=StageStay.entered_at,
                rows=(1, None),
            )
            .label("later_position"),
        )
        .join(DealFact, DealFact.id == StageStay.deal_id)
        .outerjoin(StageFact, StageFact.id == StageStay.stage_id)
        .where(*visible)
        .subquery()
    )
    here = select(stays).where(*filters.within(stays.c.entered_at)).subquery()
    counts = select(
        here.c.stage_id,
        func.count(distinct(here.c.deal_id)),
        func.count(distinct(here.c.deal_id)).filter(here.c.left_at.is_not(None)),
        func.count(distinct(here.c.deal_id)).filter(here.c.status == "won"),
        func.count(distinct(here.c.deal_id)).filter(here.c.later_position > here.c.position),
        # Open stays have no length: NULL, which avg() skips.
        func.avg(days_between(here.c.entered_at, here.c.left_at)),
    ).group_by(here.c.stage_id)
    # The medians need no window over later stays: the finished stays of the period suffice.
    middle = median_by(
        StageStay.stage_id,
        days_between(StageStay.entered_at, StageStay.left_at),
        DealFact.id == StageStay.deal_id,
        *visible,
        *filters.within(StageStay.entered_at),
        StageStay.left_at.is_not(None),
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
        if filters.period_from or filters.period_to:
            by_stage = {row[0]: row[1:] for row in (await session.execute(counts)).all()}
            median = dict(cast(Any, (await session.execute(middle)).all()))
        else:
            # All time: prepared facts and exact medians from a few index rows.
            by_stage = await all_time_counts(session, principal, pipeline_id, filters)
            median = await all_time_medians(session, principal, pipeline_id, filters)
    result = []
    for stage in stages:
        entered, moved_on, won, onward, average = by_stage.get(stage.id, (0, 0, 0, 0, None))
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
                avg_days_in_stage=_days(average),
                median_days_in_stage=_days(median.get(stage.id)),
            )
        )
    return FunnelRead(pipeline_id=pipeline_id, stages=result)
