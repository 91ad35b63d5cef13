"""Overview report: counted from the read models, never by asking another service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database, SqlColumn
from crm_kernel.directory import owner_filter
from crm_reports.models import ContactFact, DealFact, StageFact
from crm_reports.overview.schemas import MoneyTotal, OverviewRead

CENT = Decimal("0.01")


def within(
    column: SqlColumn, period_from: datetime | None, period_to: datetime | None
) -> list[Any]:
    conditions: list[ColumnElement[bool]] = []
    if period_from:
        conditions.append(column >= period_from)
    if period_to:
        conditions.append(column < period_to)
    return conditions


def _money(value: Any) -> str:
    return str(Decimal(value or 0).quantize(CENT))


async def overview(
    *, db: Database, principal: Principal, period_from: datetime | None, period_to: datetime | None
) -> OverviewRead:
    """Contacts and deals in the caller's part of the base: totals, and what happened in the period."""
    contacts = owner_filter(principal, ContactFact.owner_id)
    deals = owner_filter(principal, DealFact.owner_id)
    count_contacts = select(func.count()).select_from(ContactFact).where(contacts)
    count_deals = select(func.count()).select_from(DealFact).where(deals)
    weighted = DealFact.amount * func.coalesce(StageFact.probability, 0) / 100
    open_pipeline = (
        select(DealFact.currency, func.sum(DealFact.amount), func.sum(weighted))
        .outerjoin(StageFact, StageFact.id == DealFact.stage_id)
        .where(deals, DealFact.status == "open", DealFact.amount.is_not(None))
        .group_by(DealFact.currency)
        .order_by(DealFact.currency)
    )
    won = [deals, DealFact.status == "won", *within(DealFact.closed_at, period_from, period_to)]
    won_amount = (
        select(DealFact.currency, func.sum(DealFact.amount))
        .where(*won, DealFact.amount.is_not(None))
        .group_by(DealFact.currency)
        .order_by(DealFact.currency)
    )
    async with db.session() as session:

        async def scalar(query: Any) -> int:
            return int((await session.execute(query)).scalar_one())

        result = OverviewRead(
            contacts=await scalar(count_contacts),
            contacts_created=await scalar(
                count_contacts.where(*within(ContactFact.created_at, period_from, period_to))
            ),
            open_deals=await scalar(count_deals.where(DealFact.status == "open")),
            open_pipeline=[
                MoneyTotal(currency=c, amount=_money(a), weighted=_money(w))
                for c, a, w in (await session.execute(open_pipeline)).all()
            ],
            deals_created=await scalar(
                count_deals.where(*within(DealFact.created_at, period_from, period_to))
            ),
            deals_won=await scalar(select(func.count()).select_from(DealFact).where(*won)),
            won_amount=[
                MoneyTotal(currency=c, amount=_money(a))
                for c, a in (await session.execute(won_amount)).all()
            ],
            period_from=period_from,
            period_to=period_to,
        )
    return result
