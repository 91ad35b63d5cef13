"""Overview report: counted from the read models, never by asking another service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_reports.models import ContactFact
from crm_reports.overview.schemas import OverviewRead


async def overview(
    *, db: Database, principal: Principal, period_from: datetime | None, period_to: datetime | None
) -> OverviewRead:
    """Contacts in the caller's part of the base, in total and created within the period."""
    visible = owner_filter(principal, ContactFact.owner_id)
    created = visible
    if period_from:
        created = created & (ContactFact.created_at >= period_from)
    if period_to:
        created = created & (ContactFact.created_at < period_to)
    async with db.session() as session:
        count = select(func.count()).select_from(ContactFact)
        total = (await session.execute(count.where(visible))).scalar_one()
        in_period = (await session.execute(count.where(created))).scalar_one()
    return OverviewRead(
        contacts=total, contacts_created=in_period, period_from=period_from, period_to=period_to
    )
