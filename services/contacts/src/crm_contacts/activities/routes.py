"""HTTP routes of /activities and a contact's timeline: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_contacts.activities import service
from crm_contacts.activities.schemas import (
    ActivityCreate,
    ActivityRead,
    ActivityType,
    ActivityUpdate,
)
from crm_contacts.metering.service import ReadGuardDep
from crm_contacts.timeline import service as timeline_service
from crm_contacts.timeline.schemas import TimelineItem
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/activities", tags=["activities"])
timeline_router = APIRouter(prefix="/contacts", tags=["contacts"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ActivityRead)
async def create_activity(
    data: ActivityCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> ActivityRead:
    """Record a call, meeting, e-mail, note or SMS on a contact."""
    activity = await service.create_activity(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{request.url.path}/{activity.id}"
    response.headers["ETag"] = etag(activity.version)
    return activity


@router.get("/{activity_id}", response_model=ActivityRead)
async def get_activity(
    activity_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> ActivityRead:
    """One activity; 404 if the caller may not see it or its contact."""
    activity = await service.get_activity(db=db, principal=principal, activity_id=str(activity_id))
    response.headers["ETag"] = etag(activity.version)
    return activity


@router.get("", response_model=Page[ActivityRead])
async def list_activities(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[str | None, Query(max_length=200, description="e.g. -occurred_at")] = None,
    contact_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
    type: ActivityType | None = None,
    author_id: uuid.UUID | None = None,
) -> Page[ActivityRead]:
    """The activities the caller may see, a page at a time."""
    return await service.list_activities(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        contact_id=str(contact_id) if contact_id else None,
        deal_id=str(deal_id) if deal_id else None,
        activity_type=type,
        author_id=str(author_id) if author_id else None,
    )


@router.patch("/{activity_id}", response_model=ActivityRead)
async def update_activity(
    activity_id: uuid.UUID,
    data: ActivityUpdate,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> ActivityRead:
    """Change the fields sent; 412 if If-Match or `version` is stale."""
    activity = await service.update_activity(
        db=db,
        principal=principal,
        activity_id=str(activity_id),
        data=data,
        expected_version=if_match,
    )
    response.headers["ETag"] = etag(activity.version)
    return activity


@router.delete("/{activity_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_activity(
    activity_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, if_match: IfMatch
) -> Response:
    """Take an activity off the timeline (soft delete, audited)."""
    await service.delete_activity(
        db=db, principal=principal, activity_id=str(activity_id), expected_version=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@timeline_router.get("/{contact_id}/timeline", response_model=Page[TimelineItem])
async def timeline(
    contact_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    guard: ReadGuardDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[TimelineItem]:
    """A contact's history, newest first; 404 if the caller may not see the contact."""
    page = await timeline_service.timeline(
        db=db, principal=principal, contact_id=str(contact_id), limit=limit, cursor=cursor
    )
    await guard.check(principal, [str(contact_id)])
    return page
