"""Handlers for other services' events: the recipient directory, deliveries, deals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from crm_campaigns.campaigns.attribution import attribute_deal
from crm_campaigns.campaigns.delivery import apply_deliveries, suppress_pending
from crm_campaigns.campaigns.models import LedgerRow
from crm_campaigns.recipients import replica
from crm_kernel.consumer import BatchContext, EventContext, Handlers
from crm_kernel.contracts.contacts import (
    ConsentChanged,
    ContactCreated,
    ContactDeleted,
    ContactErased,
    ContactMerged,
    ContactOwnerChanged,
    ContactRestored,
    ContactUpdated,
    SegmentCreated,
    SegmentDeleted,
    SegmentMembersChanged,
    SegmentUpdated,
)
from crm_kernel.contracts.deals import DealCreated, DealLost, DealState, DealUpdated, DealWon
from crm_kernel.contracts.notifications import (
    DeliveriesChanged,
    DeliveryBounced,
    DeliveryChanged,
    DeliveryDelivered,
    DeliveryFailed,
    DeliverySent,
    DeliverySuppressed,
)
from crm_kernel.contracts.reports import ContactScored

handlers = Handlers("campaigns")


async def on_contacts_changed(events: list[Any], ctx: BatchContext) -> None:
    await replica.keep_contacts(ctx.session, events)


for _contact_event in (
    ContactCreated,
    ContactUpdated,
    ContactOwnerChanged,
    ContactDeleted,
    ContactRestored,
):
    handlers.on_batch(_contact_event)(on_contacts_changed)


@handlers.on(ContactMerged)
async def on_contact_merged(event: ContactMerged, ctx: EventContext) -> None:
    await replica.merge_contact(ctx.session, event)


@handlers.on(ContactErased)
async def on_contact_erased(event: ContactErased, ctx: EventContext) -> None:
    """Forget the person here too: the ledger keeps counts, not their address."""
    await replica.erase_contact(ctx.session, event)
    for channel in ("email", "sms"):
        await suppress_pending(ctx.session, channel=channel, contact_id=event.id)
    await ctx.session.execute(
        update(LedgerRow)
        .where(LedgerRow.contact_id == event.id)
        .values(address="", address_key="erased:" + LedgerRow.campaign_id + ":" + event.id)
    )


@handlers.on(ConsentChanged)
async def on_consent_changed(event: ConsentChanged, ctx: EventContext) -> None:
    await replica.change_consent(ctx.session, event)
    if not event.granted:
        await suppress_pending(ctx.session, channel=event.channel, contact_id=event.contact_id)


async def on_segment_changed(events: list[Any], ctx: BatchContext) -> None:
    for segment in events:
        await replica.keep_segment(ctx.session, segment)


for _segment_event in (SegmentCreated, SegmentUpdated, SegmentDeleted):
    handlers.on_batch(_segment_event)(on_segment_changed)


@handlers.on(SegmentMembersChanged)
async def on_segment_members_changed(event: SegmentMembersChanged, ctx: EventContext) -> None:
    await replica.change_members(ctx.session, event)


@handlers.on_batch(ContactScored)
async def on_contact_scored(events: list[ContactScored], ctx: BatchContext) -> None:
    for event in events:
        await replica.keep_score(ctx.session, event)


async def on_delivery(events: list[DeliveryChanged], ctx: BatchContext) -> None:
    await apply_deliveries(ctx.session, events)


for _delivery_event in (
    DeliverySent,
    DeliveryFailed,
    DeliverySuppressed,
    DeliveryDelivered,
    DeliveryBounced,
):
    handlers.on_batch(_delivery_event)(on_delivery)


@handlers.on_batch(DeliveriesChanged)
async def on_deliveries(batches: list[DeliveriesChanged], ctx: BatchContext) -> None:
    """Campaign traffic's reports come many to an event; each reads as its single event."""
    await apply_deliveries(ctx.session, [e for batch in batches for e in batch.events()])


async def on_deal_changed(event: DealState, ctx: EventContext) -> None:
    await attribute_deal(ctx.session, event)


for _deal_event in (DealCreated, DealUpdated, DealWon, DealLost):
    handlers.on(_deal_event)(on_deal_changed)
