"""What marketing events learn from events: contacts' deals (deals that followed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table

from crm_campaigns.events.models import ContactDeal
from crm_kernel.app import Hook, Runtime
from crm_kernel.consumer import Consumer, EventContext, Handlers
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


def register(handlers: Handlers) -> None:
    """Keep contacts' deals (created and won, and lost or reopened so a win is not kept stale).

    Recipients of invitation campaigns go on their events' lists where the delivery
    report is applied (`campaigns.delivery`), not from our own `message.sent` facts.
    """
    for kind in (DealCreated, DealWon, DealLost, DealReopened):
        handlers.on(kind)(keep_deal)


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
