"""HTTP routes of /proposals: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from crm_deals.common import Seller
from crm_deals.orders.links import OrderLinks, OrderLinksDep
from crm_deals.proposals import service
from crm_deals.proposals.schemas import (
    ProposalCreate,
    ProposalItemsReplace,
    ProposalRead,
    ProposalStatus,
)
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/proposals", tags=["proposals"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_proposal(
    data: ProposalCreate, principal: Seller, db: DatabaseDep, response: Response
) -> ProposalRead:
    """A draft proposal on a deal; line totals and the total are computed here."""
    proposal = await service.create_proposal(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{API_PREFIX}/proposals/{proposal.id}"
    response.headers["ETag"] = etag(proposal.version)
    return proposal


@router.get("")
async def list_proposals(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[str | None, Query(max_length=200)] = None,
    deal_id: uuid.UUID | None = None,
) -> Page[ProposalRead]:
    return await service.list_proposals(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        deal_id=str(deal_id) if deal_id else None,
    )


@router.get("/{proposal_id}")
async def get_proposal(
    proposal_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> ProposalRead:
    proposal = await service.get_proposal(db=db, principal=principal, proposal_id=str(proposal_id))
    response.headers["ETag"] = etag(proposal.version)
    return proposal


@router.put("/{proposal_id}/items")
async def replace_items(
    proposal_id: uuid.UUID,
    data: ProposalItemsReplace,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> ProposalRead:
    """Replace a draft's lines (409 once sent); totals are recomputed here."""
    proposal = await service.replace_items(
        db=db,
        principal=principal,
        proposal_id=str(proposal_id),
        data=data,
        expected_version=expected,
    )
    response.headers["ETag"] = etag(proposal.version)
    return proposal


async def _change(
    proposal_id: uuid.UUID,
    target: ProposalStatus,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
    links: OrderLinks | None = None,
) -> ProposalRead:
    proposal = await service.change_status(
        db=db,
        principal=principal,
        proposal_id=str(proposal_id),
        status=target,
        expected_version=expected,
        links=links,
    )
    response.headers["ETag"] = etag(proposal.version)
    return proposal


@router.post("/{proposal_id}/send")
async def send_proposal(
    proposal_id: uuid.UUID,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> ProposalRead:
    """draft -> sent (409 otherwise)."""
    return await _change(proposal_id, ProposalStatus.SENT, principal, db, expected, response)


@router.post("/{proposal_id}/accept")
async def accept_proposal(
    proposal_id: uuid.UUID,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
    links: OrderLinksDep,
) -> ProposalRead:
    """sent -> accepted, creating its order (409 otherwise)."""
    return await _change(
        proposal_id, ProposalStatus.ACCEPTED, principal, db, expected, response, links
    )


@router.post("/{proposal_id}/reject")
async def reject_proposal(
    proposal_id: uuid.UUID,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> ProposalRead:
    """sent -> rejected (409 otherwise)."""
    return await _change(proposal_id, ProposalStatus.REJECTED, principal, db, expected, response)
