"""Handlers for other services' events: the contact replica.

Only `crm.contacts.contact.created` exists today; renames, merges and erasures
(`updated`, `merged`, `erased`) will be followed here once contacts publishes
them, with `db.upsert_if_newer` on `version`.
"""

from __future__ import annotations

from crm_deals.contact_replica import add_contacts
from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts.contacts import ContactCreated, ContactState

handlers = Handlers("deals")


@handlers.on_batch(ContactCreated)
async def on_contacts_created(events: list[ContactCreated], ctx: BatchContext) -> None:
    contacts: list[ContactState] = list(events)
    await add_contacts(ctx.session, contacts)
