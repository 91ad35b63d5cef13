"""What marketing events learn from events: contacts' deals (deals that followed), invitations sent."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select

from crm_campaigns.campaigns.models import Campaign
from crm_campaigns.events import service
from crm_campaigns.events.models import ContactDeal
from crm_kernel.app import Hook, Runtime
from crm_kernel.consumer import BatchContext, Consumer, EventContext, Handlers
from crm_kernel.contracts.campaigns import MessageSent
from crm_kernel.contracts.deals import DealCreated, DealLost, DealReopened, DealState, DealWon
from crm_kernel.db import upsert_if_newer

_DEALS = cast(Table, ContactDeal.__table__)
# The marketing events' own durable consumer, so the campaigns
# consumer may handle the same deal events for campaign attribution.
CONSUMER = "campaigns-events"


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def keep_deal(event: DealState, ctx: EventContext) -> None:
    """A contact's deal as of its newest version (a late event changes nothing)."""
    if not event.contact_id:
        return
    won = event.status == "won"
    row = {
        "deal_id": event.id,
        "contact_id": event.contact_id,
        "amount": event.amount,
        "currency": event.currency,
        "status": event.status,
        "created_at": _when(event.created_at),
        "won_at": _when(event.closed_at or event.updated_at) if won else None,
        "version": event.version,
    }
    await upsert_if_newer(ctx.session, _DEALS, row, key=["deal_id"], version="version")


async def on_messages_sent(events: list[MessageSent], ctx: BatchContext) -> None:
    """Messages of an invitation campaign (one with `marketing_event_id`) put contacts on its list."""
    campaign_ids = {e.campaign_id for e in events}
    invitation_campaigns = dict(
        (
            await ctx.session.execute(
                select(Campaign.id, Campaign.marketing_event_id).where(
                    Campaign.id.in_(campaign_ids), Campaign.marketing_event_id.is_not(None)
                )
            )
        ).all()
    )
    invited: dict[str, list[str]] = defaultdict(list)
    for event in events:
        event_id = invitation_campaigns.get(event.campaign_id)
        if event_id:
            invited[event_id].append(event.contact_id)
    for event_id, contact_ids in invited.items():
        await service.record_invitations(ctx.session, event_id, contact_ids)


def register(handlers: Handlers) -> None:
    """Keep contacts' deals (created and won, and lost or reopened so a win is not kept stale),
    and put the recipients of invitation campaigns on their events' lists."""
    for kind in (DealCreated, DealWon, DealLost, DealReopened):
        handlers.on(kind)(keep_deal)
    handlers.on_batch(MessageSent)(on_messages_sent)


def consumer_hook(handlers: Handlers) -> Hook:
    """A start-up hook running `handlers` as their own durable consumer for the service's life."""

    async def start(runtime: Runtime) -> None:
        consumer = Consumer(
            runtime.db, runtime.bus, handlers, max_deliveries=runtime.settings.max_deliveries
        )
        await consumer.ensure()
        runtime.consumers.append(consumer)
        runtime.spawn(consumer.run(), f"consumer-{handlers.name}")

    return start


handlers = Handlers(CONSUMER)
register(handlers)
# Start-up hook of the service: the marketing events' consumer.
start = consumer_hook(handlers)
