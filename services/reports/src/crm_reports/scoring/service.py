"""Scores from the deal read model; the reports over them; the job that publishes changes."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import BigInteger, Integer, String, Table, bindparam, column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.app import Runtime
from crm_kernel.auth import Principal
from crm_kernel.contracts.reports import ContactScored
from crm_kernel.db import Database, UtcDateTime
from crm_kernel.outbox import add_events
from crm_reports.aggregates import dialect_insert
from crm_reports.jobs import claim
from crm_reports.models import ContactFact, ContactScore, DealFact
from crm_reports.overview.schemas import MoneyTotal
from crm_reports.scope import Filters, visible_owners
from crm_reports.scoring.model import Customer, Score, score
from crm_reports.scoring.schemas import Segment
from crm_reports.settings import ReportsSettings
from crm_reports.stats import money

log = logging.getLogger(__name__)
SCORES = cast(Table, ContactScore.__table__)
# Scores written (and stored ones read) per statement: within SQLite's bound-variable limit.
CHUNK = 500


# Every customer with their 1-5 scores, ranked in the database: the base never
# travels to Python, and the work runs off the event loop (asyncpg's server
# process, aiosqlite's thread), so reports keep answering while it runs. Ranks
# are exact: rank() - 1 is the number of customers strictly worse; revenue is
# summed in integer units of 0.0001 (SQLite would add floats). `{changed}`: the
# job keeps only customers whose published scores may differ from `contact_scores`
# (a stored revenue within 0.004 of the new one rounds to the same cent).
CUSTOMERS = """
WITH per_currency AS (
    SELECT contact_id, currency, count(*) AS deals,
           sum(CAST(round(amount * 10000) AS BIGINT)) AS units,
           min(closed_at) AS first_won_at, max(closed_at) AS last_won_at
    FROM rm_deals
    WHERE status = 'won' AND contact_id IS NOT NULL AND amount IS NOT NULL
      AND closed_at <= :as_of
    GROUP BY contact_id, currency
), customers AS (
    SELECT contact_id, currency, deals AS in_currency, units,
           sum(deals) OVER per_contact AS deals_won,
           min(first_won_at) OVER per_contact AS first_won_at,
           max(last_won_at) OVER per_contact AS last_won_at,
           row_number() OVER (
               PARTITION BY contact_id ORDER BY deals DESC, units DESC, currency DESC
           ) AS main
    FROM per_currency
    WINDOW per_contact AS (PARTITION BY contact_id)
), scored AS (
    SELECT contact_id, currency, in_currency, units, deals_won, first_won_at, last_won_at,
           1 + 5 * (rank() OVER (ORDER BY last_won_at) - 1) / count(*) OVER () AS recency,
           1 + 5 * (rank() OVER (ORDER BY deals_won) - 1) / count(*) OVER () AS frequency,
           1 + 5 * (rank() OVER (PARTITION BY currency ORDER BY units) - 1)
               / count(*) OVER (PARTITION BY currency) AS monetary
    FROM customers
    WHERE main = 1
)
SELECT scored.contact_id, scored.currency, units, in_currency, deals_won,
       first_won_at, last_won_at, scored.recency, scored.frequency, scored.monetary
FROM scored
{changed}
"""
CHANGED = """
LEFT JOIN contact_scores AS stored ON stored.contact_id = scored.contact_id
WHERE stored.contact_id IS NULL
   OR stored.recency <> scored.recency OR stored.frequency <> scored.frequency
   OR stored.monetary <> scored.monetary OR stored.currency <> scored.currency
   OR abs(CAST(stored.revenue_to_date AS NUMERIC) * 10000 - units) >= 40
"""


async def customers(
    session: AsyncSession, as_of: datetime, *, changed_only: bool = False
) -> list[Customer]:
    """Every customer as of `as_of` (or those whose scores may have changed since stored)."""
    statement = (
        text(CUSTOMERS.format(changed=CHANGED if changed_only else ""))
        .bindparams(bindparam("as_of", as_of, type_=UtcDateTime()))
        .columns(
            column("contact_id", String()),
            column("currency", String()),
            column("units", BigInteger()),
            column("in_currency", Integer()),
            column("deals_won", Integer()),
            column("first_won_at", UtcDateTime()),
            column("last_won_at", UtcDateTime()),
            column("recency", Integer()),
            column("frequency", Integer()),
            column("monetary", Integer()),
        )
    )
    return [
        Customer(
            contact_id=row.contact_id,
            currency=row.currency,
            revenue=Decimal(int(row.units)).scaleb(-4),
            in_currency=int(row.in_currency),
            deals_won=int(row.deals_won),
            first_won_at=row.first_won_at,
            last_won_at=row.last_won_at,
            recency=int(row.recency),
            frequency=int(row.frequency),
            monetary=int(row.monetary),
        )
        for row in (await session.execute(statement)).all()
    ]


async def all_scores(
    session: AsyncSession, as_of: datetime, horizon_years: int
) -> dict[str, Score]:
    """Every customer's scores over the whole base (quintiles need everyone)."""
    return {c.contact_id: score(c, as_of, horizon_years) for c in await customers(session, as_of)}


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
    Only the customers the database finds possibly changed come to Python.
    """
    now = datetime.now(UTC)
    published = 0
    async with db.transaction() as session:
        if not await claim(session, "contact-scores", slot):
            return None
        candidates = await customers(session, now, changed_only=True)
        for start in range(0, len(candidates), CHUNK):
            scores = [
                score(c, now, settings.clv_horizon_years) for c in candidates[start : start + CHUNK]
            ]
            stored = {
                row.contact_id: (
                    row.recency,
                    row.frequency,
                    row.monetary,
                    row.rfm_group,
                    row.revenue_to_date,
                    row.currency,
                )
                for row in await session.execute(
                    select(SCORES).where(SCORES.c.contact_id.in_([s.contact_id for s in scores]))
                )
            }
            changed = [s for s in scores if stored.get(s.contact_id) != s.published_part()]
            if not changed:
                continue
            published += len(changed)
            rows = [
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
                }
                for s in changed
            ]
            insert = dialect_insert(session)(SCORES).values(rows)
            await session.execute(
                insert.on_conflict_do_update(
                    index_elements=[SCORES.c.contact_id],
                    set_={c: insert.excluded[c] for c in rows[0] if c != "contact_id"},
                )
            )
            await add_events(
                session,
                [
                    (
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
                        None,
                    )
                    for s in changed
                ],
            )
    return published


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
