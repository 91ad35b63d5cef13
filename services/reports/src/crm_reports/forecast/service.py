"""Forecast from the deal, stage and stay read models.

The historical conversion of a stage is over the whole base (not only the
caller's deals, so a new rep's forecast is not built on two deals): of the
closed deals that were ever in the stage, the share that was won.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import case, distinct, func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.forecast.schemas import ForecastMonth, ForecastRead, StageConversion
from crm_reports.models import DealFact, StageFact, StageStay
from crm_reports.scope import Filters
from crm_reports.stats import money


async def forecast(*, db: Database, principal: Principal, filters: Filters) -> ForecastRead:
    """Open amount per expected close month and currency, weighted by probability and by history."""
    conversions = (
        select(
            StageStay.stage_id,
            func.count(distinct(DealFact.id)),
            func.count(distinct(case((DealFact.status == "won", DealFact.id)))),
        )
        .join(DealFact, DealFact.id == StageStay.deal_id)
        .where(DealFact.status.in_(("won", "lost")), *filters.pipeline(StageStay.pipeline_id))
        .group_by(StageStay.stage_id)
    )
    open_deals = (
        select(
            DealFact.expected_close_date,
            DealFact.currency,
            DealFact.stage_id,
            DealFact.amount,
            func.coalesce(StageFact.probability, 0),
        )
        .outerjoin(StageFact, StageFact.id == DealFact.stage_id)
        .where(
            *filters.owners(principal, DealFact.owner_id),
            *filters.pipeline(DealFact.pipeline_id),
            DealFact.status == "open",
            DealFact.amount.is_not(None),
        )
    )
    if filters.period_from:
        open_deals = open_deals.where(DealFact.expected_close_date >= filters.period_from.date())
    if filters.period_to:
        open_deals = open_deals.where(DealFact.expected_close_date < filters.period_to.date())
    async with db.session() as session:
        stages = [
            StageConversion(
                stage_id=stage,
                closed_deals=closed,
                won_deals=won,
                conversion_to_won=round(won / closed, 4) if closed else None,
            )
            for stage, closed, won in (await session.execute(conversions)).all()
        ]
        rate = {s.stage_id: Decimal(s.won_deals) / s.closed_deals for s in stages}
        months: dict[tuple[str | None, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
        for close, currency, stage, amount, probability in (
            await session.execute(open_deals)
        ).all():
            amount = Decimal(amount or 0)
            sums = months[(close.strftime("%Y-%m") if close else None, currency)]
            sums[0] += 1
            sums[1] += amount
            sums[2] += amount * Decimal(probability) / 100
            sums[3] += amount * rate.get(stage, Decimal(0))
    return ForecastRead(
        months=[
            ForecastMonth(
                month=month,
                currency=currency,
                deals=int(s[0]),
                amount=money(s[1]),
                weighted_by_probability=money(s[2]),
                weighted_by_history=money(s[3]),
            )
            for (month, currency), s in sorted(
                months.items(), key=lambda m: (m[0][0] or "9999", m[0][1])
            )
        ],
        stages=sorted(stages, key=lambda s: s.stage_id),
    )
