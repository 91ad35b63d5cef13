"""The stalled-deal check: deals idle in a stage longer than a rule allows, reported once per stay.

A background loop in every replica; a lease row in the database lets one of
them run each round (the others find it held), and the lease lapses if that
replica dies. Correctness does not rest on the lease: the run row (rule +
stay) is inserted with the `stalled` event in one transaction, so even two
checks at once report a stay once, and a restart resumes from the database.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_deals.automations.models import Automation, AutomationRun, SchedulerLease
from crm_deals.automations.runner import claim_run
from crm_deals.deals.events import deal_event
from crm_deals.deals.models import Deal, StageHistory
from crm_kernel.contracts.deals import DealStalled
from crm_kernel.contracts.notifications import SendInApp
from crm_kernel.db import Database, insert_ignoring_duplicates
from crm_kernel.outbox import add_event

log = logging.getLogger(__name__)

LEASE = "deals.stalled"
# Deals reported per rule and round; the next round takes the rest.
BATCH = 500


async def take_lease(db: Database, holder: str, ttl: timedelta) -> bool:
    """Hold the lease for `ttl` if it is free, expired, or already ours."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        table = cast(Table, SchedulerLease.__table__)
        await insert_ignoring_duplicates(
            session, table, [{"name": LEASE, "holder": "", "expires_at": now}]
        )
        taken = await session.execute(
            update(SchedulerLease)
            .where(
                SchedulerLease.name == LEASE,
                or_(SchedulerLease.holder == holder, SchedulerLease.expires_at <= now),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


async def release_lease(db: Database, holder: str) -> None:
    """Give the lease up at shutdown, so another replica takes over at once."""
    async with db.transaction() as session:
        await session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == LEASE, SchedulerLease.holder == holder)
            .values(expires_at=datetime.now(UTC))
        )


async def _report(session: AsyncSession, rule: Automation, now: datetime) -> int:
    """Report the deals of the rule's stage idle past its threshold, not reported for this stay."""
    threshold = int(rule.params["after_days"])
    rows = (
        await session.execute(
            select(Deal, StageHistory.id)
            .join(
                StageHistory,
                and_(StageHistory.deal_id == Deal.id, StageHistory.left_at.is_(None)),
            )
            .outerjoin(
                AutomationRun,
                and_(
                    AutomationRun.automation_id == rule.id,
                    AutomationRun.stay_id == StageHistory.id,
                ),
            )
            .where(
                Deal.stage_id == rule.stage_id,
                Deal.status == "open",
                Deal.stage_entered_at <= now - timedelta(days=threshold),
                AutomationRun.stay_id.is_(None),
            )
            .order_by(Deal.stage_entered_at, Deal.id)
            .limit(BATCH)
        )
    ).all()
    reported = 0
    for deal, stay_id in rows:
        if not await claim_run(session, rule.id, stay_id, deal.id, None):
            continue
        days = (now - deal.stage_entered_at).days
        await add_event(
            session,
            deal_event(
                DealStalled,
                deal,
                automation_id=rule.id,
                days_in_stage=days,
                threshold_days=threshold,
            ),
            subject=deal.id,
        )
        await add_event(
            session,
            SendInApp(
                key=f"{rule.id}:{deal.id}:{stay_id}",
                user_id=deal.owner_id,
                title=f"Deal idle for {days} days: {deal.title}"[:300],
                link=f"/deals/{deal.id}",
                source_type="deal",
                source_id=deal.id,
            ),
            subject=deal.id,
        )
        reported += 1
    return reported


async def check_stalled(db: Database) -> int:
    """One round over every active stalled rule; how many stays were reported."""
    now = datetime.now(UTC)
    reported = 0
    async with db.session() as session:
        rule_ids = list(
            await session.scalars(
                select(Automation.id).where(
                    Automation.action == "stalled", Automation.active.is_(True)
                )
            )
        )
    for rule_id in rule_ids:  # a transaction per rule keeps each one short
        async with db.transaction() as session:
            rule = await session.get(Automation, rule_id)
            if rule is not None and rule.active:
                reported += await _report(session, rule, now)
    return reported


def new_holder() -> str:
    return uuid.uuid4().hex


async def run_stalled_checks(db: Database, holder: str, interval: float) -> None:
    """Every `interval` seconds, in whichever replica holds the lease."""
    ttl = timedelta(seconds=max(interval * 3, 30))
    while True:
        try:
            if await take_lease(db, holder, ttl):
                reported = await check_stalled(db)
                if reported:
                    log.info("reported %d stalled deals", reported)
        except Exception:
            log.exception("stalled-deal check failed; retrying next round")
        await asyncio.sleep(interval)
