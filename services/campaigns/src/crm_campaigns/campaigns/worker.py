"""Background work of every replica: the sender loop and the scheduler.

The scheduler starts scheduled campaigns when due, decides A/B tests when
their window has passed, and marks campaigns `sent` once every ledger row is
final. Each step is a conditional UPDATE (a claim in the database), so with
several replicas each happens once, and after a restart it simply happens late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.ab import VariantResult, choose_winner
from crm_campaigns.campaigns.models import Campaign, LedgerRow
from crm_campaigns.campaigns.sender import Sender
from crm_campaigns.campaigns.service import publish, start_campaign
from crm_campaigns.campaigns.state import OPEN_STATUSES, variants_of
from crm_campaigns.campaigns.sweeper import BATCH, sweep_stuck_rows
from crm_campaigns.common import now
from crm_campaigns.settings import CampaignsSettings
from crm_campaigns.tracking.links import Links
from crm_kernel.app import Runtime
from crm_kernel.contracts.campaigns import CampaignSent
from crm_kernel.db import Database
from crm_kernel.problems import DomainError

log = logging.getLogger(__name__)

DELIVERED = ("sent", "delivered", "bounced")


class Worker:
    def __init__(self, db: Database, settings: CampaignsSettings):
        self.db = db
        self.settings = settings
        self.sender = Sender(db, settings, Links(settings))
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New work (a campaign started or resumed): look now rather than at the next poll."""
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.005, seconds))
        self._wake.clear()

    async def run_sender(self) -> None:
        poll = self.settings.send_poll_seconds
        while True:
            try:
                wait = await self.send_round()
            except Exception:
                log.exception("campaign sender round failed")
                wait = poll
            if wait > 0:
                await self._sleep(min(wait, poll))

    async def send_round(self) -> float:
        """One batch for every sending campaign; returns how long to wait before the next round."""
        async with self.db.session() as session:
            sending = (
                await session.scalars(select(Campaign.id).where(Campaign.status == "sending"))
            ).all()
        wait = self.settings.send_poll_seconds
        for campaign_id in sending:
            _, next_at = await self.sender.send_batch(campaign_id)
            if next_at is not None:
                wait = min(wait, (next_at - now()).total_seconds())
        return wait

    async def run_scheduler(self) -> None:
        while True:
            try:
                await self.schedule_round()
            except Exception:
                log.exception("campaign scheduler round failed")
            await asyncio.sleep(self.settings.scheduler_poll_seconds)

    async def schedule_round(self) -> None:
        moment = now()
        async with self.db.session() as session:
            due = (
                await session.scalars(
                    select(Campaign.id).where(
                        Campaign.status == "scheduled", Campaign.scheduled_at <= moment
                    )
                )
            ).all()
            deciding = (
                await session.scalars(
                    select(Campaign.id).where(
                        Campaign.status == "sending",
                        Campaign.ab_phase == "testing",
                        Campaign.ab_decide_at <= moment,
                    )
                )
            ).all()
            sending = (
                await session.scalars(select(Campaign.id).where(Campaign.status == "sending"))
            ).all()
        for campaign_id in due:
            await self._start_scheduled(campaign_id)
        for campaign_id in deciding:
            async with self.db.transaction() as session:
                if await decide_ab_test(session, campaign_id):
                    self.wake()
        while await sweep_stuck_rows(self.sender) == BATCH:
            pass
        for campaign_id in sending:
            async with self.db.transaction() as session:
                await finish_if_done(session, campaign_id)

    async def _start_scheduled(self, campaign_id: str) -> None:
        try:
            async with self.db.transaction() as session:
                if await start_campaign(session, campaign_id=campaign_id, actor=None):
                    self.wake()
        except DomainError as exc:
            # E.g. its template was deleted: back to draft, visibly, rather than retrying forever.
            log.warning("scheduled campaign %s could not start: %s", campaign_id, exc.detail)
            async with self.db.transaction() as session:
                campaign = await session.get(Campaign, campaign_id)
                if campaign is not None and campaign.status == "scheduled":
                    campaign.status = "draft"
                    campaign.version += 1
                    campaign.updated_at = now()
                    await publish(session, campaign)


async def decide_ab_test(session: AsyncSession, campaign_id: str) -> bool:
    """Pick the winner of the test group and release the held rest to it (once)."""
    test_pending = exists().where(
        LedgerRow.campaign_id == campaign_id,
        LedgerRow.in_test.is_(True),
        LedgerRow.status == "pending",
    )
    if await session.scalar(select(test_pending)):
        return False  # the test group is not out yet (paused, slow rate): wait for it
    claimed = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.ab_phase == "testing")
        .values(ab_phase="decided")
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return False
    campaign = await session.get(Campaign, campaign_id)
    assert campaign is not None
    await session.refresh(campaign)
    results = await variant_results(session, campaign_id)
    winner = choose_winner(results, campaign.ab_metric)
    await session.execute(
        update(LedgerRow)
        .where(LedgerRow.campaign_id == campaign_id, LedgerRow.status == "held")
        .values(status="pending", variant_id=winner)
    )
    campaign.ab_winner_variant_id = winner
    campaign.version += 1
    campaign.updated_at = now()
    await publish(session, campaign)
    return True


async def variant_results(session: AsyncSession, campaign_id: str) -> list[VariantResult]:
    """The test group's figures per variant."""
    results = []
    for variant in await variants_of(session, campaign_id):
        rows = (
            await session.execute(
                select(
                    LedgerRow.status, LedgerRow.first_opened_at, LedgerRow.first_clicked_at
                ).where(
                    LedgerRow.campaign_id == campaign_id,
                    LedgerRow.variant_id == variant.id,
                    LedgerRow.in_test.is_(True),
                )
            )
        ).all()
        results.append(
            VariantResult(
                variant_id=variant.id,
                position=variant.position,
                sent=sum(1 for r in rows if r.status in DELIVERED),
                opened=sum(1 for r in rows if r.first_opened_at or r.first_clicked_at),
                clicked=sum(1 for r in rows if r.first_clicked_at),
            )
        )
    return results


async def finish_if_done(session: AsyncSession, campaign_id: str) -> bool:
    """`sent` once no ledger row awaits anything (claimed once by a conditional UPDATE)."""
    still_open = exists().where(
        LedgerRow.campaign_id == campaign_id, LedgerRow.status.in_(OPEN_STATUSES)
    )
    if await session.scalar(select(still_open)):
        # Read first: the UPDATE takes SQLite's write lock, each second of a long send.
        return False
    finished = await session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.status == "sending",
            Campaign.ab_phase != "testing",
            ~still_open,
        )
        .values(status="sent", finished_at=now())
        .execution_options(synchronize_session=False)
    )
    if not finished.rowcount:  # type: ignore[attr-defined]
        return False
    campaign = await session.get(Campaign, campaign_id)
    assert campaign is not None
    await session.refresh(campaign)
    campaign.version += 1
    campaign.updated_at = now()
    await publish(session, campaign, CampaignSent)
    return True


async def start_workers(runtime: Runtime) -> None:
    """The on-startup hook: one sender and one scheduler per replica."""
    settings = runtime.settings
    assert isinstance(settings, CampaignsSettings)
    worker = Worker(runtime.db, settings)
    runtime.worker = worker  # type: ignore[attr-defined]
    runtime.spawn(worker.run_sender(), "campaign-sender")
    runtime.spawn(worker.run_scheduler(), "campaign-scheduler")


def worker_of(runtime: Runtime) -> Worker | None:
    found = getattr(runtime, "worker", None)
    return found if isinstance(found, Worker) else None
