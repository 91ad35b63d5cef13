"""Queued rows whose delivery report never came: handed over again, then failed.

A `queued` row waits for notifications' report. Were its command lost (or
dead-lettered), the row, and so the campaign, would wait forever. After
`CAMPAIGNS_REQUEUE_AFTER_SECONDS` the sweeper renders the row's command again
under the same key, at most `CAMPAIGNS_REQUEUE_ATTEMPTS` times, then marks the
row failed with the reason. Notifications stores commands ignoring a key it
already has, so a re-publication never sends a second message. All state is in
the row (`queued_at`, `requeues`), changed in the transaction that adds the
outbox rows: restart-safe, and replicas skip each other's locked rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import Campaign, LedgerRow
from crm_campaigns.campaigns.sender import Sender
from crm_campaigns.campaigns.state import report_progress
from crm_campaigns.common import now
from crm_kernel.contracts.campaigns import MessageFailed
from crm_kernel.outbox import add_events

BATCH = 500


async def sweep_stuck_rows(sender: Sender) -> int:
    """One batch of rows queued too long: re-published or failed; returns how many."""
    settings = sender.settings
    moment = now()
    cutoff = moment - timedelta(seconds=settings.requeue_after_seconds)
    query = (
        select(LedgerRow)
        .where(LedgerRow.status == "queued", LedgerRow.queued_at < cutoff)
        .order_by(LedgerRow.queued_at, LedgerRow.id)
        .limit(BATCH)
    )
    if not sender.db.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    async with sender.db.transaction() as session:
        rows = list((await session.scalars(query)).all())
        by_campaign: dict[str, list[LedgerRow]] = defaultdict(list)
        for row in rows:
            by_campaign[row.campaign_id].append(row)
        for campaign_id, stuck in by_campaign.items():
            await _sweep_campaign(session, sender, campaign_id, stuck)
        return len(rows)


async def _sweep_campaign(
    session: AsyncSession, sender: Sender, campaign_id: str, rows: list[LedgerRow]
) -> None:
    campaign = await session.get(Campaign, campaign_id)
    # A cancelled (or vanished) campaign hands nothing over again.
    may_retry = campaign is not None and campaign.status != "cancelled"
    limit = sender.settings.requeue_attempts
    again = [r for r in rows if may_retry and r.requeues < limit]
    given_up = [r for r in rows if not (may_retry and r.requeues < limit)]
    moment = now()
    for row in given_up:
        row.status, row.failed_at = "failed", moment
        row.error = f"no delivery report after {row.requeues} re-publications"
    for row in again:
        row.requeues += 1
        row.queued_at = moment
    if again and campaign is not None:
        await sender.render(session, campaign, again)
    channel = campaign.channel if campaign is not None else "email"
    await add_events(
        session,
        [
            (
                MessageFailed(
                    campaign_id=r.campaign_id,
                    variant_id=r.variant_id,
                    contact_id=r.contact_id,
                    channel=channel,
                    at=moment.isoformat(),
                    reason=r.error,
                ),
                None,
            )
            for r in given_up
        ],
    )
    await report_progress(session, campaign_id)
