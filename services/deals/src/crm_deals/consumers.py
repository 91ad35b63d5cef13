"""Handlers for events: other services' (contacts, campaigns, gateway) and deals' own stage moves.

- contact events keep the contact replica (newest version wins); merges
  re-point deals to the survivor, erasures drop the personal data;
- a lead opens a deal (once per lead), an offboarded user's deals go to
  the successor;
- campaign ids are kept so a lead's `utm_campaign` can name its campaign;
- the deals' own `created` / `stage_changed` run the stage's automations.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table

from crm_deals.automations.runner import run_entry_rules
from crm_deals.contact_replica import CampaignRef, erase_contact, forget_merged, keep_contacts
from crm_deals.deals.from_events import (
    open_deal_for_lead,
    reassign_to_successor,
    repoint_merged_contact,
)
from crm_deals.settings import DealsSettings
from crm_kernel.consumer import BatchContext, EventContext, Handlers
from crm_kernel.contracts.campaigns import CampaignCreated
from crm_kernel.contracts.contacts import (
    ContactCreated,
    ContactDeleted,
    ContactErased,
    ContactMerged,
    ContactOwnerChanged,
    ContactRestored,
    ContactUpdated,
    LeadReceived,
)
from crm_kernel.contracts.deals import DealCreated, DealStageChanged
from crm_kernel.contracts.gateway import UserOffboarded
from crm_kernel.db import insert_ignoring_duplicates


def build_handlers(settings: DealsSettings) -> Handlers:
    handlers = Handlers("deals")

    async def on_contacts_changed(events: list[Any], ctx: BatchContext) -> None:
        await keep_contacts(ctx.session, events)

    for event in (
        ContactCreated,
        ContactUpdated,
        ContactOwnerChanged,
        ContactDeleted,
        ContactRestored,
    ):
        handlers.on_batch(event)(on_contacts_changed)

    @handlers.on(ContactMerged)
    async def on_contact_merged(event: ContactMerged, ctx: EventContext) -> None:
        await keep_contacts(ctx.session, [event])
        await forget_merged(ctx.session, event.merged_id)
        await repoint_merged_contact(
            ctx.session, survivor_id=event.id, merged_id=event.merged_id, actor=ctx.envelope.actor
        )

    @handlers.on(ContactErased)
    async def on_contact_erased(event: ContactErased, ctx: EventContext) -> None:
        await erase_contact(ctx.session, event)

    @handlers.on(LeadReceived)
    async def on_lead_received(event: LeadReceived, ctx: EventContext) -> None:
        await open_deal_for_lead(ctx.session, event, default_currency=settings.default_currency)

    @handlers.on(UserOffboarded)
    async def on_user_offboarded(event: UserOffboarded, ctx: EventContext) -> None:
        await reassign_to_successor(ctx.session, event)

    @handlers.on_batch(CampaignCreated)
    async def on_campaigns_created(events: list[CampaignCreated], ctx: BatchContext) -> None:
        table = cast(Table, CampaignRef.__table__)
        await insert_ignoring_duplicates(ctx.session, table, [{"id": e.id} for e in events])

    @handlers.on(DealCreated)
    async def on_deal_created(event: DealCreated, ctx: EventContext) -> None:
        await run_entry_rules(ctx.session, event, event.transition)

    @handlers.on(DealStageChanged)
    async def on_deal_stage_changed(event: DealStageChanged, ctx: EventContext) -> None:
        await run_entry_rules(ctx.session, event, event.transition)

    return handlers
