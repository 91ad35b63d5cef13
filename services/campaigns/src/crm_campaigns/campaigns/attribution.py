"""Deals that followed a campaign: last touch within the campaign's attribution window.

A deal is attributed to the campaign that most recently sent its contact a
message (sent or delivered) within `attribution_days` before the deal was
created, or to the deal's own `source_campaign_id` when it names one of ours.
Its revenue counts when it is won, in its own currency.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import AttributedDeal, Campaign, LedgerRow
from crm_kernel.contracts.deals import DealState
from crm_kernel.db import upsert_if_newer

_DEALS = cast(Table, AttributedDeal.__table__)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _amount(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


async def _touching_campaign(
    session: AsyncSession, deal: DealState, created: datetime
) -> str | None:
    if deal.source_campaign_id and await session.scalar(
        select(Campaign.id).where(Campaign.id == deal.source_campaign_id)
    ):
        return deal.source_campaign_id
    if not deal.contact_id:
        return None
    rows = await session.execute(
        select(LedgerRow.campaign_id, LedgerRow.sent_at, Campaign.attribution_days)
        .join(Campaign, Campaign.id == LedgerRow.campaign_id)
        .where(
            LedgerRow.contact_id == deal.contact_id,
            LedgerRow.sent_at.is_not(None),
            LedgerRow.sent_at <= created,
        )
        .order_by(LedgerRow.sent_at.desc())
    )
    for campaign_id, sent_at, days in rows:
        if sent_at is not None and created - sent_at <= timedelta(days=days):
            return str(campaign_id)
    return None


async def attribute_deal(session: AsyncSession, deal: DealState) -> None:
    """Record (or update) a deal that followed a campaign; others are ignored."""
    created = _when(deal.created_at) or datetime.now(UTC)
    existing = await session.get(AttributedDeal, deal.id)
    campaign_id = (
        existing.campaign_id if existing else await _touching_campaign(session, deal, created)
    )
    if campaign_id is None:
        return
    row = {
        "deal_id": deal.id,
        "campaign_id": campaign_id,
        "contact_id": deal.contact_id or "",
        "created_at": created,
        "status": deal.status,
        "won_at": _when(deal.closed_at) if deal.status == "won" else None,
        "amount": _amount(deal.amount),
        "currency": deal.currency,
        "version": deal.version,
    }
    await upsert_if_newer(session, _DEALS, row, key=["deal_id"], version="version")
