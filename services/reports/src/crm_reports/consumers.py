"""Handlers that keep the read models from other services' events."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table

from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.db import insert_ignoring_duplicates
from crm_reports.models import ContactFact

handlers = Handlers("reports")


@handlers.on_batch(ContactCreated)
async def on_contacts_created(events: list[ContactCreated], ctx: BatchContext) -> None:
    await insert_ignoring_duplicates(
        ctx.session,
        cast(Table, ContactFact.__table__),
        [
            {"id": e.id, "owner_id": e.owner_id, "created_at": datetime.fromisoformat(e.created_at)}
            for e in events
        ],
    )
