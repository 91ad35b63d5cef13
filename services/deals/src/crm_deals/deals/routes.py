"""HTTP routes of /deals: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_deals.common import Seller
from crm_deals.deals import service
from crm_deals.deals.schemas import (
    DealCreate,
    DealLose,
    DealMove,
    DealRead,
    DealReopen,
    DealStatus,
    DealUpdate,
    LostReasons,
    StageStay,
)
from crm_deals.settings import DealsSettings
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/deals", tags=["deals"])


def _settings(request: Request) -> DealsSettings:
    settings: DealsSettings = request.app.state.settings
    return settings


def _with_etag(response: Response, deal: DealRead) -> DealRead:
    response.headers["ETag"] = etag(deal.version)
    return deal


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_deal(
    data: DealCreate, principal: Seller, db: DatabaseDep, request: Request, response: Response
) -> DealRead:
    """Open a deal (default pipeline, first open stage, owned by the caller unless given)."""
    deal = await service.create_deal(
        db=db,
        principal=principal,
        data=data,
        default_currency=_settings(request).default_currency,
    )
    response.headers["Location"] = f"{API_PREFIX}/deals/{deal.id}"
    return _with_etag(response, deal)


@router.get("/lost-reasons")
async def lost_reasons(_: CurrentUser, request: Request) -> LostReasons:
    """The reasons `/lose` accepts (plus "other" with a comment)."""
    return LostReasons(reasons=[*_settings(request).lost_reasons, "other"])


@router.get("")
async def list_deals(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[str | None, Query(max_length=200, description="e.g. -created_at")] = None,
    pipeline_id: uuid.UUID | None = None,
    stage_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    contact_id: uuid.UUID | None = None,
    company_id: uuid.UUID | None = None,
    source_campaign_id: uuid.UUID | None = None,
    status: DealStatus | None = None,
) -> Page[DealRead]:
    """The deals the caller may see, a page at a time."""
    filters = {
        "pipeline_id": pipeline_id,
        "stage_id": stage_id,
        "owner_id": owner_id,
        "contact_id": contact_id,
        "company_id": company_id,
        "source_campaign_id": source_campaign_id,
        "status": status,
    }
    return await service.list_deals(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        filters={k: str(v) if v is not None else None for k, v in filters.items()},
    )


@router.get("/{deal_id}")
async def get_deal(
    deal_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> DealRead:
    """One deal; 404 if it does not exist or the caller may not see it."""
    deal = await service.get_deal(db=db, principal=principal, deal_id=str(deal_id))
    return _with_etag(response, deal)


@router.get("/{deal_id}/history")
async def get_stage_history(
    deal_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep
) -> list[StageStay]:
    """Every stay of the deal in a stage, oldest first (the last one has no left_at)."""
    return await service.stage_history(db=db, principal=principal, deal_id=str(deal_id))


@router.patch("/{deal_id}")
async def update_deal(
    deal_id: uuid.UUID,
    data: DealUpdate,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> DealRead:
    """Change fields; 412 if If-Match is stale."""
    deal = await service.update_deal(
        db=db, principal=principal, deal_id=str(deal_id), data=data, expected_version=expected
    )
    return _with_etag(response, deal)


@router.post("/{deal_id}/move")
async def move_deal(
    deal_id: uuid.UUID,
    data: DealMove,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> DealRead:
    """Move to another stage of the pipeline (recorded in the stage history)."""
    deal = await service.move_deal(
        db=db, principal=principal, deal_id=str(deal_id), data=data, expected_version=expected
    )
    return _with_etag(response, deal)


@router.post("/{deal_id}/win")
async def win_deal(
    deal_id: uuid.UUID,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> DealRead:
    deal = await service.win_deal(
        db=db, principal=principal, deal_id=str(deal_id), expected_version=expected
    )
    return _with_etag(response, deal)


@router.post("/{deal_id}/lose")
async def lose_deal(
    deal_id: uuid.UUID,
    data: DealLose,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    request: Request,
    response: Response,
) -> DealRead:
    deal = await service.lose_deal(
        db=db,
        principal=principal,
        deal_id=str(deal_id),
        data=data,
        reasons=_settings(request).lost_reasons,
        expected_version=expected,
    )
    return _with_etag(response, deal)


@router.post("/{deal_id}/reopen")
async def reopen_deal(
    deal_id: uuid.UUID,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
    data: DealReopen | None = None,
) -> DealRead:
    deal = await service.reopen_deal(
        db=db,
        principal=principal,
        deal_id=str(deal_id),
        data=data or DealReopen(),
        expected_version=expected,
    )
    return _with_etag(response, deal)
