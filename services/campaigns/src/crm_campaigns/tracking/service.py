"""What a public link records: opens, clicks (unique and total) and unsubscribes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.delivery import suppress_pending
from crm_campaigns.campaigns.models import Campaign, LedgerRow
from crm_campaigns.common import now
from crm_campaigns.recipients.addresses import mask
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.recipients.replica import suppress
from crm_campaigns.tracking.links import Recipient as LinkRecipient
from crm_kernel.contracts.campaigns import MessageClicked, MessageOpened, RecipientUnsubscribed
from crm_kernel.outbox import add_event
from crm_kernel.problems import NotFound


async def _row(session: AsyncSession, who: LinkRecipient, *, lock: bool = False) -> LedgerRow:
    """The ledger row a token names; 404 (like a bad token) when it does not exist."""
    query = select(LedgerRow).where(
        LedgerRow.campaign_id == who.campaign_id, LedgerRow.contact_id == who.contact_id
    )
    if lock:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        raise NotFound("This link is not valid.")
    return row


async def record_open(session: AsyncSession, who: LinkRecipient) -> None:
    row = await _row(session, who, lock=True)
    moment = now()
    unique = row.first_opened_at is None
    row.opens += 1
    if unique:
        row.first_opened_at = moment
    await add_event(
        session,
        MessageOpened(
            campaign_id=row.campaign_id,
            variant_id=row.variant_id,
            contact_id=row.contact_id,
            channel=who.channel,
            at=moment.isoformat(),
            unique=unique,
        ),
    )


async def record_click(session: AsyncSession, who: LinkRecipient, url: str) -> None:
    """A click; it proves an open too (images are often blocked), counted once."""
    row = await _row(session, who, lock=True)
    moment = now()
    unique = row.first_clicked_at is None
    row.clicks += 1
    if unique:
        row.first_clicked_at = moment
    if row.first_opened_at is None:
        row.first_opened_at = moment
    await add_event(
        session,
        MessageClicked(
            campaign_id=row.campaign_id,
            variant_id=row.variant_id,
            contact_id=row.contact_id,
            channel=who.channel,
            at=moment.isoformat(),
            unique=unique,
            url=url,
        ),
    )


@dataclass(frozen=True)
class UnsubscribeView:
    channel: str
    address: str
    unsubscribed: bool


async def unsubscribe_view(session: AsyncSession, who: LinkRecipient) -> UnsubscribeView:
    row = await _row(session, who)
    return UnsubscribeView(
        channel=who.channel,
        address=mask(who.channel, row.address) if row.address else "",
        unsubscribed=row.unsubscribed_at is not None,
    )


async def unsubscribe(session: AsyncSession, who: LinkRecipient) -> None:
    """Stop every message not yet handed over, suppress the address, tell contacts (once)."""
    row = await _row(session, who, lock=True)
    if row.unsubscribed_at is not None:
        return
    moment = now()
    row.unsubscribed_at = moment
    channel = who.channel if who.channel in ("email", "sms") else "email"
    await suppress(session, channel, row.address, reason="unsubscribed")
    await suppress_pending(session, channel=channel, address=row.address)
    await suppress_pending(session, channel=channel, contact_id=row.contact_id)
    column = Recipient.consent_email if channel == "email" else Recipient.consent_sms
    await session.execute(
        update(Recipient).where(Recipient.id == row.contact_id).values({column: False})
    )
    campaign_channel = await session.scalar(
        select(Campaign.channel).where(Campaign.id == row.campaign_id)
    )
    await add_event(
        session,
        RecipientUnsubscribed(
            campaign_id=row.campaign_id,
            contact_id=row.contact_id,
            channel=campaign_channel or channel,
            email=row.address if channel == "email" else None,
            phone=row.address if channel == "sms" else None,
            at=moment.isoformat(),
        ),
    )
