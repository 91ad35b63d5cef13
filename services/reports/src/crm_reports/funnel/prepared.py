"""The all-time funnel from prepared data: `rm_funnel_facts` and exact medians via `rm_stay_lengths`.

A stage's median is the middle one or two of its visible finished stays. The
length histogram says which bucket holds each middle rank and how many stays
come before it; only that bucket's stays are then read, in the order of the
index `(pipeline_id, stage_id, days, owner_id)`, all stages in one statement.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.auth import Principal
from crm_reports.models import FunnelFact, StageStay, StayLength
from crm_reports.scope import Filters
from crm_reports.stats import in_bucket, middle_ranks

# stage -> (entered, moved on, won, onward, average days)
Counts = dict[str, tuple[int, int, int, int, float | None]]


async def all_time_counts(
    session: AsyncSession, principal: Principal, pipeline_id: str, filters: Filters
) -> Counts:
    """The same figures as the query over every stay, summed from a few rows per owner."""
    f = FunnelFact
    query = (
        select(
            f.stage_id,
            func.sum(f.entered),
            func.sum(f.moved_on),
            func.sum(f.won),
            func.sum(f.onward),
            func.sum(f.stay_microseconds),
            func.sum(f.finished),
        )
        .where(f.pipeline_id == pipeline_id, *filters.owners(principal, f.owner_id))
        .group_by(f.stage_id)
    )
    counts: Counts = {}
    for stage, entered, moved_on, won, onward, total, finished in (
        await session.execute(query)
    ).all():
        average = int(total) / int(finished) / 86_400e6 if finished else None
        counts[stage] = (int(entered), int(moved_on), int(won), int(onward), average)
    return counts


async def all_time_medians(
    session: AsyncSession, principal: Principal, pipeline_id: str, filters: Filters
) -> dict[str, float]:
    visible = filters.owners(principal, StayLength.owner_id)
    histogram = (
        select(StayLength.stage_id, StayLength.bucket, func.sum(StayLength.stays))
        .where(StayLength.pipeline_id == pipeline_id, *visible)
        .group_by(StayLength.stage_id, StayLength.bucket)
        .order_by(StayLength.stage_id, StayLength.bucket)
    )
    buckets: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for stage, index, n in (await session.execute(histogram)).all():
        buckets[stage].append((index, int(n)))
    lookups = [
        _nth(stage, pipeline_id, index, offset, principal, filters)
        for stage, counts in buckets.items()
        for index, offset in middle_ranks(counts)
    ]
    if not lookups:
        return {}
    values: dict[str, list[float]] = defaultdict(list)
    for stage, days in (await session.execute(union_all(*lookups))).all():
        values[stage].append(float(days))
    return {stage: sum(v) / len(v) for stage, v in values.items()}


def _nth(
    stage: str, pipeline_id: str, index: int, offset: int, principal: Principal, filters: Filters
) -> Select[Any]:
    """The `offset`-th visible finished stay of one length bucket, by length."""
    row = (
        select(literal(stage).label("stage"), StageStay.days)
        .where(
            StageStay.pipeline_id == pipeline_id,
            StageStay.stage_id == stage,
            *in_bucket(StageStay.days, index),
            StageStay.owner_id.is_not(None),
            *filters.owners(principal, StageStay.owner_id),
        )
        .order_by(StageStay.days)
        .offset(offset)
        .limit(1)
        .subquery()
    )
    return select(row.c.stage, row.c.days)
