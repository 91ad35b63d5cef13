"""Deal changes caused by other services' events: leads open deals, offboarding and merges re-point them.

Each runs inside the consumer's transaction (with its inbox row), so a
redelivered event changes nothing twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_deals.contact_replica import CampaignRef, ContactRef
from crm_deals.deals.events import deal_event
from crm_deals.deals.models import Deal
from crm_deals.deals.service import insert_deal
from crm_deals.money import CURRENCIES, MAX_AMOUNT, decimals_of, minor_unit
from crm_deals.orders.models import Order
from crm_deals.pipelines.defaults import DEFAULT_PIPELINE_ID
from crm_deals.pipelines.models import Pipeline
from crm_deals.pipelines.schemas import StageKind
from crm_deals.pipelines.service import live_stages
from crm_kernel.contracts.contacts import LeadReceived
from crm_kernel.contracts.deals import DealOwnerChanged, DealUpdated
from crm_kernel.contracts.gateway import UserOffboarded
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event

log = logging.getLogger(__name__)


def _amount(lead: LeadReceived, currency: str) -> Decimal | None:
    """The lead's expected amount if it is a valid one in `currency`; else none (never a failure)."""
    if lead.amount is None:
        return None
    try:
        amount = Decimal(lead.amount)
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 <= amount < MAX_AMOUNT:
        return None
    return amount if decimals_of(amount) <= minor_unit(currency) else None


async def open_deal_for_lead(
    session: AsyncSession, lead: LeadReceived, *, default_currency: str
) -> None:
    """One deal per lead, in the first open stage of the lead's (or the default) pipeline."""
    if await session.scalar(select(Deal.id).where(Deal.lead_id == lead.id)) is not None:
        return
    pipeline_id = lead.pipeline_id or DEFAULT_PIPELINE_ID
    if lead.pipeline_id and await session.get(Pipeline, lead.pipeline_id) is None:
        log.warning("lead %s names unknown pipeline %s: default used", lead.id, lead.pipeline_id)
        pipeline_id = DEFAULT_PIPELINE_ID
    stages = await live_stages(session, pipeline_id)
    first = next(s for s in stages if s.kind == StageKind.OPEN)
    currency = (lead.currency or "").upper()
    currency = currency if currency in CURRENCIES else default_currency
    contact_name = await session.scalar(
        select(ContactRef.name).where(ContactRef.id == lead.contact_id)
    )
    campaign_id = None
    if lead.utm_campaign:
        campaign_id = await session.scalar(
            select(CampaignRef.id).where(CampaignRef.id == lead.utm_campaign.strip().lower())
        )
    deal = Deal(
        id=str(new_id()),
        title=(lead.title or contact_name or f"Lead ({lead.source})")[:300],
        contact_id=lead.contact_id,
        pipeline_id=pipeline_id,
        owner_id=lead.owner_id,
        amount=_amount(lead, currency),
        currency=currency,
        source=lead.source[:50],
        lead_id=lead.id,
        source_campaign_id=campaign_id,
    )
    await insert_deal(session, deal, stage=first, stages=stages, actor=None, now=datetime.now(UTC))


async def reassign_to_successor(session: AsyncSession, event: UserOffboarded) -> None:
    """Every deal of the leaver (open and closed) goes to the successor, each with owner_changed."""
    deals = (
        await session.scalars(
            select(Deal).where(Deal.owner_id == event.user_id).order_by(Deal.created_at, Deal.id)
        )
    ).all()
    now = datetime.now(UTC)
    for deal in deals:
        deal.owner_id = event.successor_id
        deal.updated_at = now
    await session.flush()
    for deal in deals:
        await add_event(
            session,
            deal_event(DealOwnerChanged, deal, previous_owner_id=event.user_id),
            subject=deal.id,
            actor=event.actor_id,
        )


async def repoint_merged_contact(
    session: AsyncSession, *, survivor_id: str, merged_id: str, actor: str | None
) -> None:
    """Deals of a merged contact now reference the survivor (an `updated` event each).

    Its orders follow too (no event: order events carry the contact only for
    the client notifications of later status changes).
    """
    await session.execute(
        update(Order).where(Order.contact_id == merged_id).values(contact_id=survivor_id)
    )
    deals = (await session.scalars(select(Deal).where(Deal.contact_id == merged_id))).all()
    now = datetime.now(UTC)
    for deal in deals:
        deal.contact_id = survivor_id
        deal.updated_at = now
    await session.flush()
    for deal in deals:
        await add_event(
            session,
            deal_event(DealUpdated, deal, changed_fields=["contact_id"]),
            subject=deal.id,
            actor=actor,
        )
