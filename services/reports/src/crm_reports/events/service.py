"""Marketing events from their participant facts (or their own counters when no facts came)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import distinct, func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.events.schemas import EventRow, EventsRead
from crm_reports.models import DealFact, MarketingEventFact, Participant
from crm_reports.overview.schemas import MoneyTotal
from crm_reports.scope import Filters
from crm_reports.stats import money, ratio


async def events(
    *, db: Database, principal: Principal, filters: Filters, follow_up_days: int
) -> EventsRead:
    """Events starting in the period: attendance, participation and the deals that followed."""
    window = timedelta(days=follow_up_days)
    async with db.session() as session:
        found = (
            (
                await session.execute(
                    select(MarketingEventFact).where(*filters.within(MarketingEventFact.starts_at))
                )
            )
            .scalars()
            .all()
        )
        ids = [e.id for e in found]
        steps: dict[str, dict[str, int]] = defaultdict(dict)
        for event_id, step, n in (
            await session.execute(
                select(
                    Participant.event_id,
                    Participant.step,
                    func.count(distinct(Participant.contact_id)),
                )
                .where(Participant.event_id.in_(ids))
                .group_by(Participant.event_id, Participant.step)
            )
        ).all():
            steps[event_id][step] = int(n)
        followed = (
            select(
                Participant.event_id,
                DealFact.id,
                DealFact.created_at,
                DealFact.status,
                DealFact.amount,
                DealFact.currency,
            )
            .distinct()
            .join(DealFact, DealFact.contact_id == Participant.contact_id)
            .where(
                Participant.event_id.in_(ids),
                Participant.step.in_(("registered", "attended")),
                *filters.owners(principal, DealFact.owner_id),
                *filters.pipeline(DealFact.pipeline_id),
            )
        )
        starts = {e.id: e.starts_at for e in found}
        deals: dict[str, set[str]] = defaultdict(set)
        won: dict[str, set[str]] = defaultdict(set)
        revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for event_id, deal_id, created_at, status, amount, currency in (
            await session.execute(followed)
        ).all():
            if not starts[event_id] <= created_at < starts[event_id] + window:
                continue
            if deal_id in deals[event_id]:
                continue
            deals[event_id].add(deal_id)
            if status == "won":
                won[event_id].add(deal_id)
                revenue[event_id][currency] += Decimal(amount or 0)
    rows = []
    for e in sorted(found, key=lambda e: (e.starts_at, e.id)):
        counted = steps.get(e.id)
        invited, registered, attended = (
            (counted.get("invited", 0), counted.get("registered", 0), counted.get("attended", 0))
            if counted
            else (e.invited, e.registered, e.attended)
        )
        rows.append(
            EventRow(
                event_id=e.id,
                name=e.name,
                kind=e.kind,
                starts_at=e.starts_at.isoformat(),
                invited=invited,
                registered=registered,
                attended=attended,
                participation=ratio(attended, invited),
                deals_created=len(deals[e.id]),
                deals_won=len(won[e.id]),
                revenue=[
                    MoneyTotal(currency=c, amount=money(a))
                    for c, a in sorted(revenue[e.id].items())
                ],
            )
        )
    return EventsRead(follow_up_days=follow_up_days, events=rows)
