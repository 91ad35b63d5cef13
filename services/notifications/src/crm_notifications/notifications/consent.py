"""Marketing consent as contacts publish it, kept here so it is checked at send time.

Bulk (campaign) messages go only to addresses whose newest known consent on
that channel is granted; an unknown address counts as not consenting.
Transactional messages (an order's status, a task reminder) do not need
marketing consent; the suppression list still applies to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts.contacts import ConsentChanged, ContactCreated
from crm_kernel.db import upsert_if_newer
from crm_notifications.models import Consent

CONSENTS = cast(Table, Consent.__table__)


def address_of(channel: str, recipient: str) -> str:
    return recipient.strip().lower() if channel == "email" else recipient.strip()


async def remember(
    session: AsyncSession, channel: str, recipient: str | None, granted: bool, changed_at: str
) -> None:
    if not recipient:
        return
    row: dict[str, Any] = {
        "channel": channel,
        "address": address_of(channel, recipient),
        "granted": granted,
        "changed_at": datetime.fromisoformat(changed_at),
    }
    await upsert_if_newer(session, CONSENTS, row, key=["channel", "address"], version="changed_at")


def register(handlers: Handlers) -> None:
    @handlers.on_batch(ContactCreated)
    async def on_contacts_created(events: list[ContactCreated], ctx: BatchContext) -> None:
        for contact in events:
            await remember(
                ctx.session, "email", contact.email, contact.consent.email, contact.created_at
            )
            await remember(
                ctx.session, "sms", contact.phone, contact.consent.sms, contact.created_at
            )

    @handlers.on_batch(ConsentChanged)
    async def on_consents_changed(events: list[ConsentChanged], ctx: BatchContext) -> None:
        for change in events:
            recipient = change.email if change.channel == "email" else change.phone
            await remember(
                ctx.session, change.channel, recipient, change.granted, change.changed_at
            )
