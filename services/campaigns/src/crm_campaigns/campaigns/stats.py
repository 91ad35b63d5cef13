"""Campaign statistics: response figures overall, per variant and per hour; deals and ROI."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import AttributedDeal, Campaign, LedgerRow
from crm_campaigns.campaigns.state import variants_of

REACHED = ("sent", "delivered", "bounced")


class Figures(BaseModel):
    audience: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    suppressed: int = 0
    opened: int = 0  # unique
    opens_total: int = 0
    clicked: int = 0  # unique
    clicks_total: int = 0
    unsubscribed: int = 0
    complained: int = 0
    open_rate: float = 0.0
    click_rate: float = 0.0
    # Recipients who opened or clicked, per message sent.
    response_rate: float = 0.0


class VariantFigures(Figures):
    variant_id: str
    name: str
    winner: bool = False


class HourFigures(BaseModel):
    hour: datetime
    sent: int = 0
    opened: int = 0
    clicked: int = 0


class Revenue(BaseModel):
    currency: str
    amount: Decimal


class DealFigures(BaseModel):
    attribution_days: int
    created: int
    won: int
    revenue: list[Revenue]
    cost: Decimal | None
    currency: str | None
    # (revenue in the cost's currency - cost) / cost; None without a cost.
    roi: float | None


class CampaignStats(BaseModel):
    campaign_id: str
    status: str
    totals: Figures
    variants: list[VariantFigures]
    hourly: list[HourFigures]
    deals: DealFigures


def _figures(rows: list[Any], into: Figures) -> Figures:
    for r in rows:
        into.audience += 1
        if r.status in REACHED or r.sent_at is not None:
            into.sent += 1
        into.delivered += r.status == "delivered"
        into.failed += r.status == "failed"
        into.bounced += r.bounced_at is not None
        into.suppressed += r.status == "suppressed"
        into.opened += r.first_opened_at is not None
        into.opens_total += r.opens
        into.clicked += r.first_clicked_at is not None
        into.clicks_total += r.clicks
        into.unsubscribed += r.unsubscribed_at is not None
        into.complained += r.complained_at is not None
    if into.sent:
        into.open_rate = round(into.opened / into.sent, 4)
        into.click_rate = round(into.clicked / into.sent, 4)
        responded = sum(1 for r in rows if r.first_opened_at or r.first_clicked_at)
        into.response_rate = round(responded / into.sent, 4)
    return into


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def campaign_stats(session: AsyncSession, campaign: Campaign) -> CampaignStats:
    rows = list(
        (
            await session.execute(
                select(
                    LedgerRow.variant_id,
                    LedgerRow.status,
                    LedgerRow.sent_at,
                    LedgerRow.bounced_at,
                    LedgerRow.opens,
                    LedgerRow.clicks,
                    LedgerRow.first_opened_at,
                    LedgerRow.first_clicked_at,
                    LedgerRow.unsubscribed_at,
                    LedgerRow.complained_at,
                ).where(LedgerRow.campaign_id == campaign.id)
            )
        ).all()
    )
    by_variant: dict[str | None, list[Any]] = defaultdict(list)
    hours: dict[datetime, HourFigures] = {}
    for r in rows:
        by_variant[r.variant_id].append(r)
        for moment, name in (
            (r.sent_at, "sent"),
            (r.first_opened_at, "opened"),
            (r.first_clicked_at, "clicked"),
        ):
            if moment is not None:
                bucket = hours.setdefault(_hour(moment), HourFigures(hour=_hour(moment)))
                setattr(bucket, name, getattr(bucket, name) + 1)
    variants = [
        _figures(
            by_variant.get(v.id, []),
            VariantFigures(
                variant_id=v.id, name=v.name, winner=v.id == campaign.ab_winner_variant_id
            ),
        )
        for v in await variants_of(session, campaign.id)
    ]
    return CampaignStats(
        campaign_id=campaign.id,
        status=campaign.status,
        totals=_figures(rows, Figures()),
        variants=variants,
        hourly=[hours[h] for h in sorted(hours)],
        deals=await deal_figures(session, campaign),
    )


async def deal_figures(session: AsyncSession, campaign: Campaign) -> DealFigures:
    deals = (
        await session.scalars(
            select(AttributedDeal).where(AttributedDeal.campaign_id == campaign.id)
        )
    ).all()
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for deal in deals:
        if deal.status == "won":
            revenue[deal.currency] += deal.amount or Decimal(0)
    roi = None
    if campaign.cost and campaign.currency:
        roi = round(
            float((revenue.get(campaign.currency, Decimal(0)) - campaign.cost) / campaign.cost), 4
        )
    return DealFigures(
        attribution_days=campaign.attribution_days,
        created=len(deals),
        won=sum(1 for d in deals if d.status == "won"),
        revenue=[Revenue(currency=c, amount=a) for c, a in sorted(revenue.items())],
        cost=campaign.cost,
        currency=campaign.currency,
        roi=roi,
    )
