"""Cycle distribution from the deal read model: won deals in the period, visible ones only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

from sqlalchemy import select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.cycle.schemas import CycleGroup, CycleRead
from crm_reports.models import DealFact
from crm_reports.scope import Filters
from crm_reports.stats import days_between, percentile


async def cycle(*, db: Database, principal: Principal, filters: Filters) -> CycleRead:
    """Median, p75 and p90 days from creation to win, overall and by pipeline, owner and source."""
    query = select(
        DealFact.pipeline_id,
        DealFact.owner_id,
        DealFact.source,
        days_between(DealFact.created_at, DealFact.closed_at),
    ).where(
        *filters.owners(principal, DealFact.owner_id),
        *filters.pipeline(DealFact.pipeline_id),
        DealFact.status == "won",
        *filters.within(DealFact.closed_at),
    )
    groups: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    async with db.session() as session:
        for pipeline, owner, source, days in cast(Any, (await session.execute(query)).all()):
            for key in (
                ("all", None),
                ("pipeline", pipeline),
                ("owner", owner),
                ("source", source or "none"),
            ):
                groups[key].append(days)
    groups.setdefault(("all", None), [])
    order = {"all": 0, "pipeline": 1, "owner": 2, "source": 3}
    return CycleRead(
        groups=[
            CycleGroup(
                by=by,
                key=key,
                deals_won=len(days),
                median_days=percentile(days, 0.5),
                p75_days=percentile(days, 0.75),
                p90_days=percentile(days, 0.9),
            )
            for (by, key), days in sorted(
                groups.items(), key=lambda g: (order[g[0][0]], g[0][1] or "")
            )
        ]
    )
