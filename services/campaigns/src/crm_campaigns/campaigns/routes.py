"""`/campaigns`: marketers and admins run them; every staff role may read them and their stats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns import service
from crm_campaigns.campaigns.models import Campaign
from crm_campaigns.campaigns.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    ScheduleRequest,
    VariantRead,
)
from crm_campaigns.campaigns.state import counters, variants_of
from crm_campaigns.campaigns.stats import CampaignStats, campaign_stats
from crm_campaigns.campaigns.worker import worker_of
from crm_campaigns.common import MarketingUser, parse_id
from crm_campaigns.settings import CampaignsSettings
from crm_kernel.app import DatabaseDep, runtime_of
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


async def campaign_read(session: AsyncSession, campaign: Campaign) -> CampaignRead:
    variants = await variants_of(session, campaign.id)
    return CampaignRead(
        **{f: getattr(campaign, f) for f in _PLAIN_FIELDS},
        segment_id=campaign.segment_ids[0] if campaign.segment_ids else None,
        variants=[VariantRead.model_validate(v, from_attributes=True) for v in variants],
        progress=await counters(session, campaign.id),
    )


_PLAIN_FIELDS = [
    f for f in CampaignRead.model_fields if f not in ("segment_id", "variants", "progress")
]


def _settings(request: Request) -> CampaignsSettings:
    settings: CampaignsSettings = request.app.state.settings
    return settings


def _wake(request: Request) -> None:
    worker = worker_of(runtime_of(request))
    if worker is not None:
        worker.wake()


async def _respond(
    request: Request, response: Response, change: Callable[[AsyncSession], Awaitable[Campaign]]
) -> CampaignRead:
    """Run one use case in a transaction and answer the campaign as it now is."""
    db = request.app.state.db
    async with db.transaction() as session:
        campaign = await change(session)
        read = await campaign_read(session, campaign)
    response.headers["ETag"] = etag(read.version)
    return read


@router.post("", status_code=201)
async def create_campaign(
    body: CampaignCreate, request: Request, response: Response, user: MarketingUser
) -> CampaignRead:
    rate = _settings(request).default_rate_per_second
    return await _respond(
        request,
        response,
        lambda s: service.create_campaign(s, body=body, principal=user, default_rate=rate),
    )


@router.get("")
async def list_campaigns(
    db: DatabaseDep,
    user: CurrentUser,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    sort: str | None = None,
) -> Page[CampaignRead]:
    query = select(Campaign).where(Campaign.deleted_at.is_(None))
    if status:
        query = query.where(Campaign.status == status)
    keys = parse_sort(
        sort,
        {"created_at": Campaign.created_at, "name": Campaign.name},
        "-created_at",
        Campaign.id,
    )
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
        items = [await campaign_read(session, row[0]) for row in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{campaign_id}")
async def read_campaign(
    campaign_id: str, db: DatabaseDep, user: CurrentUser, response: Response
) -> CampaignRead:
    async with db.session() as session:
        campaign = await service.get_campaign(session, parse_id(campaign_id, "campaign"))
        read = await campaign_read(session, campaign)
    response.headers["ETag"] = etag(read.version)
    return read


@router.put("/{campaign_id}")
async def update_campaign(
    campaign_id: str,
    body: CampaignUpdate,
    request: Request,
    response: Response,
    user: MarketingUser,
    if_match: IfMatch,
) -> CampaignRead:
    rate = _settings(request).default_rate_per_second
    return await _respond(
        request,
        response,
        lambda s: service.update_campaign(
            s,
            campaign_id=parse_id(campaign_id, "campaign"),
            body=body,
            principal=user,
            if_match=if_match,
            default_rate=rate,
        ),
    )


@router.delete("/{campaign_id}", status_code=204)
async def delete_campaign(campaign_id: str, db: DatabaseDep, user: MarketingUser) -> None:
    async with db.transaction() as session:
        await service.delete_campaign(
            session, campaign_id=parse_id(campaign_id, "campaign"), principal=user
        )


@router.post("/{campaign_id}/schedule")
async def schedule_campaign(
    campaign_id: str,
    body: ScheduleRequest,
    request: Request,
    response: Response,
    user: MarketingUser,
) -> CampaignRead:
    return await _respond(
        request,
        response,
        lambda s: service.schedule_campaign(
            s, campaign_id=parse_id(campaign_id, "campaign"), at=body.scheduled_at, principal=user
        ),
    )


def _action(
    name: str, use_case: Callable[..., Awaitable[Campaign]], *, wakes: bool = False
) -> None:
    async def act(
        campaign_id: str, request: Request, response: Response, user: MarketingUser
    ) -> CampaignRead:
        read = await _respond(
            request,
            response,
            lambda s: use_case(s, campaign_id=parse_id(campaign_id, "campaign"), principal=user),
        )
        if wakes:
            _wake(request)
        return read

    act.__name__ = f"{name}_campaign"
    act.__doc__ = _ACTION_DOCS[name]
    router.post(f"/{{campaign_id}}/{name}")(act)


_ACTION_DOCS = {
    "send": "Start now: snapshot the audience into the send ledger, then send at the set rate.",
    "pause": "Stop handing messages over; already handed ones still go.",
    "resume": "Go on exactly where it stopped.",
    "cancel": "Stop for good: recipients not yet handed over get nothing.",
}
_action("send", service.send_now, wakes=True)
_action("pause", service.pause_campaign)
_action("resume", service.resume_campaign, wakes=True)
_action("cancel", service.cancel_campaign)


@router.get("/{campaign_id}/stats")
async def read_stats(campaign_id: str, db: DatabaseDep, user: CurrentUser) -> CampaignStats:
    async with db.session() as session:
        campaign = await service.get_campaign(session, parse_id(campaign_id, "campaign"))
        return await campaign_stats(session, campaign)
