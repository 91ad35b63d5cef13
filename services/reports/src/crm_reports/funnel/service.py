"""Funnel from prepared data kept from the deal events, visible deals only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.funnel.prepared import (
    all_time_counts,
    all_time_medians,
    period_counts,
    period_medians,
)
from crm_reports.funnel.schemas import FunnelRead, FunnelStage
from crm_reports.models import StageFact
from crm_reports.scope import Filters


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

    From prepared data: all time from `rm_funnel_facts`, a period from the day rows
    of `rm_funnel_days`; medians are read in index order (`prepared.py`).
    """
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
            by_stage, finished, edges = await period_counts(
                session, principal, pipeline_id, filters
            )
            median = await period_medians(session, principal, pipeline_id, filters, finished, edges)
        else:
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
