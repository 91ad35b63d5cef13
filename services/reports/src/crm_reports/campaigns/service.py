"""Campaign statistics from the message facts, with deals attributed to the campaign.

A deal is attributed to a campaign when it names it (`source_campaign_id`) or
when its contact was sent the campaign and the deal was created within the
campaign's attribution window (`attribution_days`) after that message; a deal
counts once per campaign, for the variant its contact was sent. A rep or head of
sales counts only the recipients and deals they may see; admins and marketers
all of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_reports.campaigns.schemas import CampaignRow, CampaignsRead, VariantRow
from crm_reports.models import (
    CampaignFact,
    CampaignVariant,
    ContactFact,
    DealFact,
    MessageFactRow,
)
from crm_reports.overview.schemas import MoneyTotal
from crm_reports.scope import Filters
from crm_reports.stats import money, ratio

KINDS = (
    "sent",
    "delivered",
    "failed",
    "bounced",
    "complained",
    "opened",
    "clicked",
    "unsubscribed",
)


@dataclass
class Tally:
    facts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    opens_total: int = 0
    deals: set[str] = field(default_factory=set)
    won: set[str] = field(default_factory=set)
    revenue: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, other: Tally) -> None:
        for kind, n in other.facts.items():
            self.facts[kind] += n
        self.opens_total += other.opens_total
        self.deals |= other.deals
        self.won |= other.won
        for currency, amount in other.revenue.items():
            self.revenue[currency] += amount

    def response(self, audience: int) -> dict[str, Any]:
        f = self.facts
        return {
            "audience": audience,
            **{k: f[k] for k in KINDS},
            "opens_total": self.opens_total,
            "response_rate": ratio(f["clicked"], f["delivered"] or f["sent"]),
            "deals_created": len(self.deals),
            "deals_won": len(self.won),
            "revenue": [
                MoneyTotal(currency=c, amount=money(a)) for c, a in sorted(self.revenue.items())
            ],
        }


async def campaigns(*, db: Database, principal: Principal, filters: Filters) -> CampaignsRead:
    """Campaigns started (or, not started, created) in the period, with their variants."""
    started = func.coalesce(CampaignFact.started_at, CampaignFact.created_at)
    async with db.session() as session:
        found = (
            (await session.execute(select(CampaignFact).where(*filters.within(started))))
            .scalars()
            .all()
        )
        ids = [c.id for c in found]
        names = {
            (v.campaign_id, v.variant_id): v.name
            for v in (
                await session.execute(
                    select(CampaignVariant).where(CampaignVariant.campaign_id.in_(ids))
                )
            ).scalars()
        }
        tallies = await _tally_facts(session, principal, ids)
        await _attribute_deals(session, principal, filters, found, tallies)
    rows = []
    for c in sorted(found, key=lambda c: (c.started_at or c.created_at, c.id), reverse=True):
        per_variant = tallies.get(c.id, {})
        total = Tally()
        for tally in per_variant.values():
            total.add(tally)
        cost = Decimal(c.cost) if c.cost is not None else None
        in_cost_currency = total.revenue.get(c.currency or "", Decimal(0))
        variants = [
            VariantRow(
                variant_id=variant,
                name=names.get((c.id, variant)) if variant else None,
                **tally.response(tally.facts["sent"] + tally.facts["failed"]),
            )
            for variant, tally in sorted(per_variant.items(), key=lambda v: v[0] or "")
        ]
        rows.append(
            CampaignRow(
                campaign_id=c.id,
                name=c.name,
                status=c.status,
                started_at=c.started_at.isoformat() if c.started_at else None,
                cost=MoneyTotal(currency=c.currency or "", amount=money(cost))
                if cost is not None
                else None,
                roi=float(round((in_cost_currency - cost) / cost, 4)) if cost else None,
                variants=variants,
                **total.response(c.audience),
            )
        )
    return CampaignsRead(campaigns=rows)


async def _tally_facts(
    session: Any, principal: Principal, ids: list[str]
) -> dict[str, dict[str | None, Tally]]:
    """Fact counts per campaign and variant (an unsubscribe takes the variant its contact was sent)."""
    sent = aliased(MessageFactRow)
    variant = func.coalesce(MessageFactRow.variant_id, sent.variant_id)
    query = (
        select(
            MessageFactRow.campaign_id,
            variant,
            MessageFactRow.kind,
            func.count(),
            func.sum(MessageFactRow.total),
        )
        .outerjoin(
            sent,
            (sent.campaign_id == MessageFactRow.campaign_id)
            & (sent.contact_id == MessageFactRow.contact_id)
            & (sent.kind == "sent"),
        )
        .where(MessageFactRow.campaign_id.in_(ids))
        .group_by(MessageFactRow.campaign_id, variant, MessageFactRow.kind)
    )
    if not principal.sees_every_owner():
        query = query.join(ContactFact, ContactFact.id == MessageFactRow.contact_id).where(
            owner_filter(principal, ContactFact.owner_id)
        )
    tallies: dict[str, dict[str | None, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for campaign, variant_id, kind, unique, total in (await session.execute(query)).all():
        tally = tallies[campaign][variant_id]
        tally.facts[kind] = tally.facts.get(kind, 0) + int(unique)
        if kind == "opened":
            tally.opens_total += int(total)
    return tallies


async def _attribute_deals(
    session: Any,
    principal: Principal,
    filters: Filters,
    found: Any,
    tallies: dict[str, dict[str | None, Tally]],
) -> None:
    """Add each campaign's attributed deals (visible ones) to the tally of the recipient's variant."""
    windows = {c.id: timedelta(days=c.attribution_days) for c in found}
    deal_columns = (DealFact.id, DealFact.status, DealFact.amount, DealFact.currency)
    visible = [
        *filters.owners(principal, DealFact.owner_id),
        *filters.pipeline(DealFact.pipeline_id),
    ]
    by_message = (
        select(
            MessageFactRow.campaign_id,
            MessageFactRow.variant_id,
            MessageFactRow.first_at,
            DealFact.created_at,
            DealFact.source_campaign_id,
            *deal_columns,
        )
        .join(DealFact, DealFact.contact_id == MessageFactRow.contact_id)
        .where(
            MessageFactRow.campaign_id.in_(list(windows)),
            MessageFactRow.kind == "sent",
            *visible,
            or_(
                DealFact.created_at >= MessageFactRow.first_at,
                DealFact.source_campaign_id == MessageFactRow.campaign_id,
            ),
        )
    )
    named = select(DealFact.source_campaign_id, *deal_columns).where(
        DealFact.source_campaign_id.in_(list(windows)), *visible
    )
    counted: set[tuple[str, str]] = set()

    def count(campaign: str, variant: str | None, deal: tuple[Any, ...]) -> None:
        deal_id, status, amount, currency = deal
        if (campaign, deal_id) in counted:
            return
        counted.add((campaign, deal_id))
        tally = tallies[campaign][variant]
        tally.deals.add(deal_id)
        if status == "won":
            tally.won.add(deal_id)
            tally.revenue[currency] += Decimal(amount or 0)

    for campaign, variant, sent_at, created_at, source, *deal in (
        await session.execute(by_message)
    ).all():
        if source == campaign or sent_at <= created_at < sent_at + windows[campaign]:
            count(campaign, variant, tuple(deal))
    for campaign, *deal in (await session.execute(named)).all():
        count(campaign, None, tuple(deal))
