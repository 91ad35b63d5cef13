"""Handlers for other services' events and for commands sent to contacts.

- deal, proposal, order, campaign-message and delivery events become system
  entries on the contact's timeline (one per event id; merged contacts'
  entries go to the survivor);
- a campaign unsubscribe withdraws the channel's consent;
- `crm.contacts.task.create` creates a task once per key;
- an offboarded user's records go to the successor.
"""

from __future__ import annotations

from typing import Any

from crm_contacts import offboarding
from crm_contacts.contacts.service import withdraw_consent_from_event
from crm_contacts.tasks.service import create_task_from_command
from crm_contacts.timeline import from_events
from crm_kernel.consumer import BatchContext, EventContext, Handlers
from crm_kernel.contracts.campaigns import (
    MessageClicked,
    MessageOpened,
    MessageSent,
    RecipientUnsubscribed,
)
from crm_kernel.contracts.contacts import CreateTask
from crm_kernel.contracts.deals import (
    DealCreated,
    DealLost,
    DealOwnerChanged,
    DealReopened,
    DealStageChanged,
    DealUpdated,
    DealWon,
    OrderStatusChanged,
    ProposalStatusChanged,
)
from crm_kernel.contracts.gateway import UserOffboarded
from crm_kernel.contracts.notifications import DeliveriesChanged, DeliveryFailed, DeliverySent

UNSUBSCRIBE_SOURCE = "unsubscribe_link"


def build_handlers() -> Handlers:
    handlers = Handlers("contacts")

    async def on_deal_events(events: list[Any], ctx: BatchContext) -> None:
        await from_events.keep_deal_contacts(ctx.session, events)
        rows = [from_events.deal_row(e, env) for e, env in zip(events, ctx.envelopes, strict=True)]
        await from_events.add_entries(ctx.session, rows)

    for deal_event in (
        DealCreated,
        DealUpdated,
        DealStageChanged,
        DealWon,
        DealLost,
        DealReopened,
        DealOwnerChanged,
    ):
        handlers.on_batch(deal_event)(on_deal_events)

    @handlers.on(ProposalStatusChanged)
    async def on_proposal_status_changed(event: ProposalStatusChanged, ctx: EventContext) -> None:
        contact_id = await from_events.deal_contact(ctx.session, event.deal_id)
        row = from_events.proposal_row(event, ctx.envelope, contact_id)
        await from_events.add_entries(ctx.session, [row])

    @handlers.on(OrderStatusChanged)
    async def on_order_status_changed(event: OrderStatusChanged, ctx: EventContext) -> None:
        contact_id = event.contact_id or await from_events.deal_contact(ctx.session, event.deal_id)
        row = from_events.order_row(event, ctx.envelope, contact_id)
        await from_events.add_entries(ctx.session, [row])

    async def on_message_facts(events: list[Any], ctx: BatchContext) -> None:
        rows = [
            from_events.message_row(e, env) for e, env in zip(events, ctx.envelopes, strict=True)
        ]
        await from_events.add_entries(ctx.session, rows)

    for fact in (MessageSent, MessageOpened, MessageClicked):
        handlers.on_batch(fact)(on_message_facts)

    async def on_deliveries(events: list[Any], ctx: BatchContext) -> None:
        rows = [
            from_events.delivery_row(e, env) for e, env in zip(events, ctx.envelopes, strict=True)
        ]
        await from_events.add_entries(ctx.session, rows)

    for delivery in (DeliverySent, DeliveryFailed):
        handlers.on_batch(delivery)(on_deliveries)

    @handlers.on_batch(DeliveriesChanged)
    async def on_delivery_batches(batches: list[DeliveriesChanged], ctx: BatchContext) -> None:
        rows = [
            row
            for batch, envelope in zip(batches, ctx.envelopes, strict=True)
            for row in from_events.delivery_batch_rows(batch, envelope)
        ]
        await from_events.add_entries(ctx.session, rows)

    @handlers.on(RecipientUnsubscribed)
    async def on_recipient_unsubscribed(event: RecipientUnsubscribed, ctx: EventContext) -> None:
        await withdraw_consent_from_event(
            ctx.session,
            contact_id=event.contact_id,
            channel=event.channel,
            source=UNSUBSCRIBE_SOURCE,
            actor=ctx.envelope.actor,
        )

    @handlers.on(CreateTask)
    async def on_create_task(command: CreateTask, ctx: EventContext) -> None:
        await create_task_from_command(ctx.session, command, actor=ctx.envelope.actor)

    @handlers.on(UserOffboarded)
    async def on_user_offboarded(event: UserOffboarded, ctx: EventContext) -> None:
        await offboarding.reassign_to_successor(ctx.session, event, event_id=ctx.envelope.id)

    return handlers
