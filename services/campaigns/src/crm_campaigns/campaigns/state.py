"""A campaign's counters from its ledger, and its state as published in events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import Campaign, LedgerRow, Variant
from crm_campaigns.campaigns.schemas import Counters
from crm_campaigns.common import iso, now
from crm_kernel.contracts.campaigns import CampaignProgress, CampaignState, VariantState
from crm_kernel.outbox import add_event

# The live stream gets at most one progress event per campaign and this interval.
PROGRESS_EVERY = timedelta(seconds=1)
# Ledger statuses that still await something; every other status is final.
OPEN_STATUSES = ("held", "pending", "queued")


async def counters(session: AsyncSession, campaign_id: str) -> Counters:
    rows = await session.execute(
        select(LedgerRow.status, func.count())
        .where(LedgerRow.campaign_id == campaign_id)
        .group_by(LedgerRow.status)
    )
    by_status = {status: count for status, count in rows}
    return Counters(audience=sum(by_status.values()), **by_status)


async def variants_of(session: AsyncSession, campaign_id: str) -> list[Variant]:
    found = await session.scalars(
        select(Variant).where(Variant.campaign_id == campaign_id).order_by(Variant.position)
    )
    return list(found.all())


async def campaign_state(
    session: AsyncSession, campaign: Campaign, kind: type[CampaignState]
) -> CampaignState:
    """The event of this kind carrying the campaign's whole current state and progress."""
    progress = await counters(session, campaign.id)
    variants = await variants_of(session, campaign.id)
    return kind(
        id=campaign.id,
        name=campaign.name,
        channel=campaign.channel,
        status=campaign.status,
        segment_ids=list(campaign.segment_ids),
        exclude_segment_ids=list(campaign.exclude_segment_ids),
        variants=[VariantState(id=v.id, name=v.name) for v in variants],
        cost=str(campaign.cost) if campaign.cost is not None else None,
        currency=campaign.currency,
        attribution_days=campaign.attribution_days,
        marketing_event_id=campaign.marketing_event_id,
        audience=progress.audience,
        # Handed to and confirmed by notifications (sent, delivered, later bounced).
        sent=progress.sent + progress.delivered + progress.bounced,
        failed=progress.failed,
        scheduled_at=iso(campaign.scheduled_at),
        started_at=iso(campaign.started_at),
        finished_at=iso(campaign.finished_at),
        created_by=campaign.created_by,
        version=campaign.version,
        created_at=campaign.created_at.isoformat(),
        updated_at=campaign.updated_at.isoformat(),
    )


async def report_progress(session: AsyncSession, campaign_id: str) -> None:
    """Publish `campaign.progress` unless one went out less than a second ago (any replica)."""
    moment = now()
    claimed = await session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.status.in_(("sending", "paused")),
            or_(
                Campaign.last_progress_at.is_(None),
                Campaign.last_progress_at <= moment - PROGRESS_EVERY,
            ),
        )
        .values(last_progress_at=moment)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return
    campaign = await session.get(Campaign, campaign_id)
    if campaign is not None:
        await add_event(session, await campaign_state(session, campaign, CampaignProgress))
