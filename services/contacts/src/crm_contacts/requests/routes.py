"""HTTP routes of /requests: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_contacts.requests import service
from crm_contacts.requests.schemas import RequestCreate, RequestRead, RequestStatus, RequestUpdate
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/requests", tags=["requests"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RequestRead)
async def open_request(
    data: RequestCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> RequestRead:
    """Open a client request on a contact."""
    opened = await service.open_request(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{request.url.path}/{opened.id}"
    response.headers["ETag"] = etag(opened.version)
    return opened


@router.get("/{request_id}", response_model=RequestRead)
async def get_request(
    request_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> RequestRead:
    """One request; 404 if the caller may not see its contact."""
    found = await service.get_request(db=db, principal=principal, request_id=str(request_id))
    response.headers["ETag"] = etag(found.version)
    return found


@router.get("", response_model=Page[RequestRead])
async def list_requests(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[str | None, Query(max_length=200, description="e.g. -opened_at")] = None,
    status: RequestStatus | None = None,
    contact_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
) -> Page[RequestRead]:
    """The requests the caller may see, a page at a time."""
    return await service.list_requests(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        status=status,
        contact_id=str(contact_id) if contact_id else None,
        assignee_id=str(assignee_id) if assignee_id else None,
    )


@router.patch("/{request_id}", response_model=RequestRead)
async def update_request(
    request_id: uuid.UUID,
    data: RequestUpdate,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> RequestRead:
    """Change the fields sent or move `status`; 409 on an illegal move, 412 if stale."""
    changed = await service.update_request(
        db=db,
        principal=principal,
        request_id=str(request_id),
        data=data,
        expected_version=if_match,
    )
    response.headers["ETag"] = etag(changed.version)
    return changed
