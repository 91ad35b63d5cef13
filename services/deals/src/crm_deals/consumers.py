"""Handlers for other services' events: the contact replica (name and owner, newest version).

Merges and erasures (`merged`, `erased`) will be followed here once contacts
publishes them.
"""

from __future__ import annotations

from typing import Any

from crm_deals.contact_replica import keep_contacts
from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts.contacts import (
    ContactCreated,
    ContactDeleted,
    ContactOwnerChanged,
    ContactRestored,
    ContactUpdated,
)

handlers = Handlers("deals")


async def on_contacts_changed(events: list[Any], ctx: BatchContext) -> None:
    await keep_contacts(ctx.session, events)


for _event in (
    ContactCreated,
    ContactUpdated,
    ContactOwnerChanged,
    ContactDeleted,
    ContactRestored,
):
    handlers.on_batch(_event)(on_contacts_changed)
