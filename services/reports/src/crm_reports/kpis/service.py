"""Headline indicators, each computed for the period and for the one before it.

- `marketing_response_rate`: recipients who clicked / recipients delivered
  (first click or delivery in the period; the caller's contacts only unless
  they see every owner);
- `new_clients`: contacts whose first won deal closed in the period, and
  `new_clients_growth` (its change);
- `cost_per_acquired_client` (per currency): cost of the campaigns started in
  the period / new clients;
- `won_share`: won / (won + lost) of deals closed in the period;
- `cycle_days`: median days from creation to win of deals won in the period;
- `request_resolution_hours`: average resolution time of requests resolved in it.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.aggregates import deal_totals
from crm_reports.kpis.schemas import Kpi, KpisRead
from crm_reports.managers.service import deal_scope, median_cycles
from crm_reports.models import CampaignFact, ContactFact, DealFact, MessageFactRow, RequestFact
from crm_reports.scope import Filters
from crm_reports.stats import ratio

Figures = dict[tuple[str, str | None], float | None]


async def figures(db: Database, principal: Principal, filters: Filters) -> Figures:
    """The indicators of one period."""
    out: Figures = {}
    async with db.session() as session:
        facts = select(MessageFactRow.kind, func.count()).where(
            MessageFactRow.kind.in_(("delivered", "clicked")),
            *filters.within(MessageFactRow.first_at),
        )
        if not principal.sees_every_owner():
            facts = facts.join(ContactFact, ContactFact.id == MessageFactRow.contact_id).where(
                *filters.owners(principal, ContactFact.owner_id)
            )
        counts = dict((await session.execute(facts.group_by(MessageFactRow.kind))).all())
        out[("marketing_response_rate", None)] = ratio(
            counts.get("clicked", 0), counts.get("delivered", 0)
        )
        first_wins = (
            select(DealFact.contact_id, func.min(DealFact.closed_at).label("first"))
            .where(DealFact.status == "won", DealFact.contact_id.is_not(None))
            .group_by(DealFact.contact_id)
            .subquery()
        )
        # The client counts for whoever owns the deal that made them one.
        new_clients_q = (
            select(func.count(func.distinct(first_wins.c.contact_id)))
            .join(
                DealFact,
                (DealFact.contact_id == first_wins.c.contact_id)
                & (DealFact.closed_at == first_wins.c.first)
                & (DealFact.status == "won"),
            )
            .where(
                *filters.within(first_wins.c.first),
                *filters.owners(principal, DealFact.owner_id),
                *filters.pipeline(DealFact.pipeline_id),
            )
        )
        new_clients = int((await session.execute(new_clients_q)).scalar_one())
        out[("new_clients", None)] = new_clients
        costs = select(CampaignFact.currency, func.sum(CampaignFact.cost)).where(
            CampaignFact.cost.is_not(None),
            *filters.within(func.coalesce(CampaignFact.started_at, CampaignFact.created_at)),
        )
        for currency, cost in (await session.execute(costs.group_by(CampaignFact.currency))).all():
            out[("cost_per_acquired_client", currency)] = (
                float(round(Decimal(cost or 0) / new_clients, 2)) if new_clients else None
            )
        totals = await deal_totals(
            session,
            scope=deal_scope(filters, principal),
            period_from=filters.period_from,
            period_to=filters.period_to,
        )
        won = sum(t.won for t in totals.values())
        lost = sum(t.lost for t in totals.values())
        out[("won_share", None)] = ratio(won, won + lost)
        cycle = await median_cycles(session, filters, principal, per_owner=False)
        out[("cycle_days", None)] = cycle.get("all")
        resolution = select(func.count(), func.sum(RequestFact.resolution_seconds)).where(
            *filters.owners(principal, RequestFact.assignee_id),
            RequestFact.status == "resolved",
            *filters.within(RequestFact.resolved_at),
        )
        resolved, seconds = (await session.execute(resolution)).one()
        out[("request_resolution_hours", None)] = (
            round(int(seconds or 0) / int(resolved) / 3600, 3) if resolved else None
        )
    return out


async def kpis(*, db: Database, principal: Principal, filters: Filters) -> KpisRead:
    """Every indicator for the period and the previous one of the same length."""
    before = filters.previous()
    now, then = await figures(db, principal, filters), await figures(db, principal, before)
    now[("new_clients_growth", None)] = _change(
        now[("new_clients", None)], then[("new_clients", None)]
    )
    then[("new_clients_growth", None)] = None
    names = dict.fromkeys([*now, *then])
    return KpisRead(
        period_from=filters.period_from,
        period_to=filters.period_to,
        previous_from=before.period_from,
        kpis=[
            Kpi(
                name=name,
                currency=currency,
                value=now.get((name, currency)),
                previous=then.get((name, currency)),
                change=_change(now.get((name, currency)), then.get((name, currency))),
            )
            for name, currency in names
        ],
    )


def _change(value: float | None, previous: float | None) -> float | None:
    if value is None or not previous:
        return None
    return round((value - previous) / previous, 4)
