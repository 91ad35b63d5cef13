"""Handlers that keep the read models from other services' events."""

from __future__ import annotations

from datetime import datetime

from crm_kernel.consumer import EventContext, Handlers
from crm_kernel.contracts.contacts import ContactCreated
from sqlalchemy import select

from crm_reports.models import ContactFact

handlers = Handlers("reports")


@handlers.on(ContactCreated)
async def on_contact_created(event: ContactCreated, ctx: EventContext) -> None:
    exists = await ctx.session.execute(select(ContactFact.id).where(ContactFact.id == event.id))
    if exists.first() is None:
        ctx.session.add(
            ContactFact(
                id=event.id,
                owner_id=event.owner_id,
                created_at=datetime.fromisoformat(event.created_at),
            )
        )
