"""Campaign use cases: define, schedule, start, pause, resume, cancel (one transaction each)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import Campaign, LedgerRow, Variant
from crm_campaigns.campaigns.schemas import CampaignBody, CampaignUpdate
from crm_campaigns.campaigns.snapshot import snapshot_audience
from crm_campaigns.campaigns.state import campaign_state
from crm_campaigns.common import now
from crm_campaigns.events.models import MarketingEvent
from crm_campaigns.templates.models import Template
from crm_campaigns.templates.rendering import uses_variable
from crm_kernel.auth import Principal
from crm_kernel.contracts.campaigns import CampaignCreated, CampaignState, CampaignUpdated
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.problems import Conflict, NotFound, Unprocessable
from crm_kernel.versioning import check_version

EDITABLE = ("draft", "scheduled")


async def get_campaign(session: AsyncSession, campaign_id: str, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id, Campaign.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    campaign = await session.scalar(query)
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


async def publish(
    session: AsyncSession,
    campaign: Campaign,
    kind: type[CampaignState] = CampaignUpdated,
    actor: str | None = None,
) -> None:
    await add_event(session, await campaign_state(session, campaign, kind), actor=actor)


def _unprocessable(title: str, field: str, message: str) -> Unprocessable:
    return Unprocessable(title, errors=[{"field": field, "location": "body", "message": message}])


async def _check_references(session: AsyncSession, body: CampaignBody) -> None:
    """The marketing event and the templates exist; only an invitation may use `event.*`."""
    if body.marketing_event_id is not None and (
        await session.get(MarketingEvent, body.marketing_event_id) is None
    ):
        raise _unprocessable("No such marketing event.", "marketing_event_id", "unknown event")
    contents: list[str | None] = [v.subject for v in body.variants]
    contents += [v.body_html for v in body.variants] + [v.body_text for v in body.variants]
    ids = {body.template_id} | {v.template_id for v in body.variants}
    for template_id in ids - {None}:
        template = await session.get(Template, template_id)
        if template is None or template.deleted_at is not None:
            raise _unprocessable("No such template.", "template_id", "unknown template")
        if template.channel != body.channel:
            raise _unprocessable(
                f"The template is for {template.channel}, the campaign for {body.channel}.",
                "template_id",
                "wrong channel",
            )
        contents += [template.subject, template.body_html, template.body_text]
    if body.marketing_event_id is None and any(uses_variable(c, "event") for c in contents):
        raise _unprocessable(
            "Only an invitation campaign (with marketing_event_id) may use `event`.",
            "marketing_event_id",
            "the template uses `event`: name the marketing event",
        )


def _apply(campaign: Campaign, body: CampaignBody, default_rate: int) -> None:
    campaign.name = body.name
    campaign.channel = body.channel
    campaign.template_id = body.template_id
    campaign.segment_ids = list(body.segment_ids)
    campaign.exclude_segment_ids = list(body.exclude_segment_ids)
    campaign.rfm_groups = list(body.rfm_groups)
    campaign.cost = body.cost
    campaign.currency = body.currency
    campaign.attribution_days = body.attribution_days
    campaign.rate_per_second = body.rate_per_second or default_rate
    campaign.track_opens = body.track_opens
    campaign.track_clicks = body.track_clicks
    campaign.ab_test_percent = body.ab_test_percent
    campaign.ab_metric = body.ab_metric
    campaign.ab_window_minutes = body.ab_window_minutes
    # A definition names its schedule: with `scheduled_at` it is scheduled, without it a draft.
    campaign.marketing_event_id = body.marketing_event_id
    campaign.scheduled_at = body.scheduled_at
    campaign.status = "scheduled" if body.scheduled_at is not None else "draft"


async def _replace_variants(session: AsyncSession, campaign_id: str, body: CampaignBody) -> None:
    await session.execute(delete(Variant).where(Variant.campaign_id == campaign_id))
    for position, variant in enumerate(body.variants):
        session.add(
            Variant(
                id=str(new_id()),
                campaign_id=campaign_id,
                position=position,
                **variant.model_dump(),
            )
        )
    await session.flush()


async def create_campaign(
    session: AsyncSession,
    *,
    body: CampaignBody,
    principal: Principal,
    default_rate: int,
) -> Campaign:
    """A draft (or, with `scheduled_at`, a scheduled) campaign."""
    await _check_references(session, body)
    moment = now()
    campaign = Campaign(
        id=str(new_id()),
        status="draft",
        ab_phase="none",
        audience=0,
        created_by=principal.user_id,
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    _apply(campaign, body, default_rate)
    session.add(campaign)
    await session.flush()
    await _replace_variants(session, campaign.id, body)
    await publish(session, campaign, CampaignCreated, principal.user_id)
    return campaign


async def update_campaign(
    session: AsyncSession,
    *,
    campaign_id: str,
    body: CampaignUpdate,
    principal: Principal,
    if_match: int | None,
    default_rate: int,
) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    check_version(campaign.version, if_match, body.version)
    if campaign.status not in EDITABLE:
        raise Conflict(f"A {campaign.status} campaign cannot be changed.")
    await _check_references(session, body)
    _apply(campaign, body, default_rate)
    await _replace_variants(session, campaign.id, body)
    _bump(campaign)
    await publish(session, campaign, actor=principal.user_id)
    return campaign


def _bump(campaign: Campaign) -> None:
    campaign.version += 1
    campaign.updated_at = now()


async def schedule_campaign(
    session: AsyncSession, *, campaign_id: str, at: datetime, principal: Principal
) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status not in EDITABLE:
        raise Conflict(f"A {campaign.status} campaign cannot be scheduled.")
    campaign.status = "scheduled"
    campaign.scheduled_at = at
    _bump(campaign)
    await publish(session, campaign, actor=principal.user_id)
    return campaign


async def start_campaign(
    session: AsyncSession, *, campaign_id: str, actor: str | None
) -> Campaign | None:
    """Move a draft or scheduled campaign to `sending` and snapshot its audience, atomically.

    The conditional UPDATE is the claim: of several replicas (or a scheduler and
    a `POST /send` racing), exactly one sees its row change; the others get None.
    """
    claimed = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_(EDITABLE))
        .values(status="sending", started_at=now())
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    campaign = await get_campaign(session, campaign_id)
    await session.refresh(campaign)
    await snapshot_audience(session, campaign)
    _bump(campaign)
    await publish(session, campaign, actor=actor)
    return campaign


async def send_now(session: AsyncSession, *, campaign_id: str, principal: Principal) -> Campaign:
    campaign = await get_campaign(session, campaign_id)
    started = await start_campaign(session, campaign_id=campaign.id, actor=principal.user_id)
    if started is None:
        raise Conflict(f"A {campaign.status} campaign cannot be sent.")
    return started


async def pause_campaign(
    session: AsyncSession, *, campaign_id: str, principal: Principal
) -> Campaign:
    """Stop claiming rows; messages already handed to notifications still go."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status != "sending":
        raise Conflict(f"A {campaign.status} campaign cannot be paused.")
    campaign.status = "paused"
    _bump(campaign)
    await publish(session, campaign, actor=principal.user_id)
    return campaign


async def resume_campaign(
    session: AsyncSession, *, campaign_id: str, principal: Principal
) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status != "paused":
        raise Conflict(f"A {campaign.status} campaign cannot be resumed.")
    campaign.status = "sending"
    _bump(campaign)
    await publish(session, campaign, actor=principal.user_id)
    return campaign


async def cancel_campaign(
    session: AsyncSession, *, campaign_id: str, principal: Principal
) -> Campaign:
    """Nothing more is sent: every row not yet handed over becomes `cancelled`."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status in ("sent", "cancelled"):
        raise Conflict(f"A {campaign.status} campaign cannot be cancelled.")
    await session.execute(
        update(LedgerRow)
        .where(LedgerRow.campaign_id == campaign.id, LedgerRow.status.in_(("held", "pending")))
        .values(status="cancelled")
    )
    campaign.status = "cancelled"
    campaign.finished_at = now()
    _bump(campaign)
    await publish(session, campaign, actor=principal.user_id)
    return campaign


async def delete_campaign(session: AsyncSession, *, campaign_id: str, principal: Principal) -> None:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status not in EDITABLE:
        raise Conflict("Only a draft or scheduled campaign can be deleted; cancel it instead.")
    campaign.status = "cancelled"
    campaign.deleted_at = now()
    _bump(campaign)
    await publish(session, campaign, actor=principal.user_id)
