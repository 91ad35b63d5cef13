"""Overview report: counted from the read models, never by asking another service."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database, SqlColumn
from crm_reports.models import CampaignFact, ContactFact, DealFact, LeadFact, StageFact, TaskFact
from crm_reports.overview.schemas import MoneyTotal, OverviewRead
from crm_reports.scope import Filters

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


async def overview(*, db: Database, principal: Principal, filters: Filters) -> OverviewRead:
    """Contacts and deals in the caller's part of the base: totals, and what happened in the period.

    `pipeline_id` narrows the deal figures; `owner_id`/`team_id` every figure.
    """
    period_from, period_to = filters.period_from, filters.period_to
    contacts = and_(*filters.owners(principal, ContactFact.owner_id))
    deals = and_(
        *filters.owners(principal, DealFact.owner_id), *filters.pipeline(DealFact.pipeline_id)
    )
    count_contacts = (
        select(func.count())
        .select_from(ContactFact)
        .where(contacts, ContactFact.deleted_at.is_(None))
    )
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
            leads_received=await scalar(
                select(func.count())
                .select_from(LeadFact)
                .where(
                    *filters.owners(principal, LeadFact.owner_id),
                    *within(LeadFact.received_at, period_from, period_to),
                )
            ),
            tasks_overdue=await scalar(
                select(func.count())
                .select_from(TaskFact)
                .where(
                    *filters.owners(principal, TaskFact.assignee_id),
                    TaskFact.status == "open",
                    TaskFact.deleted_at.is_(None),
                    TaskFact.due_at < datetime.now(UTC),
                )
            ),
            campaigns_sent=await scalar(
                select(func.count())
                .select_from(CampaignFact)
                .where(
                    CampaignFact.status.in_(("sending", "sent")),
                    *within(CampaignFact.started_at, period_from, period_to),
                )
            ),
            period_from=period_from,
            period_to=period_to,
        )
    return result
