"""Scores from the deal read model; the reports over them; the job that publishes changes."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.app import Runtime
from crm_kernel.auth import Principal
from crm_kernel.contracts.reports import ContactScored
from crm_kernel.db import Database, upsert
from crm_kernel.outbox import add_event
from crm_reports.jobs import claim
from crm_reports.models import ContactFact, ContactScore, DealFact
from crm_reports.overview.schemas import MoneyTotal
from crm_reports.scope import Filters, visible_owners
from crm_reports.scoring.model import Score, score_customers
from crm_reports.scoring.schemas import Segment
from crm_reports.settings import ReportsSettings
from crm_reports.stats import money

log = logging.getLogger(__name__)
SCORES = cast(Table, ContactScore.__table__)


async def all_scores(
    session: AsyncSession, as_of: datetime, horizon_years: int
) -> dict[str, Score]:
    """Every customer's scores over the whole base (quintiles need everyone)."""
    wins = select(
        DealFact.contact_id, DealFact.closed_at, DealFact.amount, DealFact.currency
    ).where(
        DealFact.status == "won",
        DealFact.contact_id.is_not(None),
        DealFact.closed_at <= as_of,
        DealFact.amount.is_not(None),
    )
    rows = [
        (contact, closed_at, Decimal(amount or 0), currency)
        for contact, closed_at, amount, currency in cast(Any, (await session.execute(wins)).all())
    ]
    return score_customers(rows, as_of, horizon_years)


async def visible_scores(
    *, db: Database, principal: Principal, filters: Filters, as_of: datetime, horizon_years: int
) -> list[tuple[str, Score]]:
    """(owner, score) of the customers the caller may see: by the contact's owner, else its deal's."""
    async with db.session() as session:
        scores = await all_scores(session, as_of, horizon_years)
        owner_of: dict[str, str] = {}
        latest = (
            select(DealFact.contact_id, DealFact.owner_id)
            .where(DealFact.status == "won", DealFact.contact_id.in_(list(scores)))
            .order_by(DealFact.closed_at)
        )
        for contact, owner in cast(Any, (await session.execute(latest)).all()):
            owner_of[contact] = owner
        contacts = select(ContactFact.id, ContactFact.owner_id).where(
            ContactFact.id.in_(list(scores))
        )
        owner_of.update(dict((await session.execute(contacts)).all()))
        visible = await visible_owners(session, principal, filters, set(owner_of.values()))
    return sorted(
        ((owner_of[c], s) for c, s in scores.items() if owner_of[c] in visible),
        key=lambda item: (-item[1].predicted_clv, item[1].contact_id),
    )


async def publish_changes(db: Database, settings: ReportsSettings, slot: str) -> int | None:
    """Publish `crm.reports.contact.scored` for each contact whose scores changed, once per slot.

    The claim, the new scores and the outbox rows commit together: a crash
    leaves the slot unclaimed (it runs again), a second replica finds it claimed.
    """
    now = datetime.now(UTC)
    async with db.transaction() as session:
        if not await claim(session, "contact-scores", slot):
            return None
        scores = await all_scores(session, now, settings.clv_horizon_years)
        stored = {
            row.contact_id: (
                row.recency,
                row.frequency,
                row.monetary,
                row.rfm_group,
                row.revenue_to_date,
                row.currency,
            )
            for row in (await session.execute(select(ContactScore))).scalars()
        }
        changed = [s for s in scores.values() if stored.get(s.contact_id) != s.published_part()]
        for s in changed:
            await upsert(
                session,
                SCORES,
                {
                    "contact_id": s.contact_id,
                    "recency": s.recency,
                    "frequency": s.frequency,
                    "monetary": s.monetary,
                    "rfm_group": s.rfm_group,
                    "revenue_to_date": str(s.revenue_to_date),
                    "predicted_clv": str(s.predicted_clv),
                    "currency": s.currency,
                    "scored_at": now,
                },
                key=["contact_id"],
                update=[
                    "recency",
                    "frequency",
                    "monetary",
                    "rfm_group",
                    "revenue_to_date",
                    "predicted_clv",
                    "currency",
                    "scored_at",
                ],
            )
            await add_event(
                session,
                ContactScored(
                    contact_id=s.contact_id,
                    recency=s.recency,
                    frequency=s.frequency,
                    monetary=s.monetary,
                    rfm_group=s.rfm_group,
                    revenue_to_date=str(s.revenue_to_date),
                    predicted_clv=str(s.predicted_clv),
                    currency=s.currency,
                    as_of=now.isoformat(),
                ),
            )
    return len(changed)


async def scoring_loop(runtime: Runtime) -> None:
    """Every `scoring_interval_seconds`, one replica scores the base and publishes what changed."""
    settings = cast(ReportsSettings, runtime.settings)
    interval = settings.scoring_interval_seconds
    while True:
        slot = str(int(datetime.now(UTC).timestamp() // interval))
        try:
            published = await publish_changes(runtime.db, settings, slot)
            if published:
                log.info("published %s changed contact scores", published)
        except Exception:
            log.exception("scoring failed; retrying at the next tick")
        await asyncio.sleep(min(interval, 60.0))


def segments(scores: list[tuple[str, Score]]) -> list[Segment]:
    """Per RFM group: customers, revenue to date and predicted CLV per currency."""
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    clv: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    counts: dict[str, int] = defaultdict(int)
    for _, s in scores:
        counts[s.rfm_group] += 1
        revenue[s.rfm_group][s.currency] += s.revenue_to_date
        clv[s.rfm_group][s.currency] += s.predicted_clv
    return [
        Segment(
            rfm_group=name,
            customers=counts[name],
            revenue_to_date=[
                MoneyTotal(currency=c, amount=money(a)) for c, a in sorted(revenue[name].items())
            ],
            predicted_clv=[
                MoneyTotal(currency=c, amount=money(a)) for c, a in sorted(clv[name].items())
            ],
        )
        for name in sorted(counts)
    ]
