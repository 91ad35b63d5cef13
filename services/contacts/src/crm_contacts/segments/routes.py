"""HTTP routes of /segments: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_contacts.contacts.schemas import ContactRead
from crm_contacts.metering.service import ReadGuardDep
from crm_contacts.segments import service
from crm_contacts.segments.schemas import (
    FilterPreview,
    MembersChange,
    MembersChanged,
    Preview,
    SegmentCreate,
    SegmentRead,
    SegmentSize,
    SegmentUpdate,
)
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/segments", tags=["segments"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]
Sort = Annotated[str | None, Query(max_length=200)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SegmentRead)
async def create_segment(
    data: SegmentCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> SegmentRead:
    """A static or dynamic segment, owned by the caller; 422 naming a bad filter's part."""
    segment = await service.create_segment(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{request.url.path}/{segment.id}"
    response.headers["ETag"] = etag(segment.version)
    return segment


@router.post("/preview", response_model=Preview)
async def preview_filter(
    data: FilterPreview,
    principal: CurrentUser,
    db: DatabaseDep,
    guard: ReadGuardDep,
    limit: Limit = 20,
) -> Preview:
    """How many contacts the caller sees match a filter, and the first of them."""
    preview = await service.preview(db=db, principal=principal, raw_filter=data.filter, limit=limit)
    await guard.check(principal, [str(c.id) for c in preview.items])
    return preview


@router.get("", response_model=Page[SegmentRead])
async def list_segments(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Sort = None,
) -> Page[SegmentRead]:
    return await service.list_segments(
        db=db, principal=principal, limit=limit, cursor=cursor, sort=sort
    )


@router.get("/{segment_id}", response_model=SegmentRead)
async def get_segment(
    segment_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> SegmentRead:
    segment = await service.get_segment(db=db, principal=principal, segment_id=str(segment_id))
    response.headers["ETag"] = etag(segment.version)
    return segment


@router.patch("/{segment_id}", response_model=SegmentRead)
async def update_segment(
    segment_id: uuid.UUID,
    data: SegmentUpdate,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> SegmentRead:
    """Rename a segment or change a dynamic one's filter (If-Match as everywhere)."""
    segment = await service.update_segment(
        db=db,
        principal=principal,
        segment_id=str(segment_id),
        data=data,
        expected_version=if_match,
    )
    response.headers["ETag"] = etag(segment.version)
    return segment


@router.delete("/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_segment(
    segment_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, if_match: IfMatch
) -> Response:
    await service.delete_segment(
        db=db, principal=principal, segment_id=str(segment_id), expected_version=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{segment_id}/members", response_model=MembersChanged)
async def add_members(
    segment_id: uuid.UUID, data: MembersChange, principal: CurrentUser, db: DatabaseDep
) -> MembersChanged:
    """Add contacts to a static segment, by `ids` or by `filter`."""
    return await service.add_members(
        db=db, principal=principal, segment_id=str(segment_id), data=data
    )


@router.post("/{segment_id}/members/remove", response_model=MembersChanged)
async def remove_members(
    segment_id: uuid.UUID, data: MembersChange, principal: CurrentUser, db: DatabaseDep
) -> MembersChanged:
    """Remove contacts from a static segment, by `ids` or by `filter`."""
    return await service.remove_members(
        db=db, principal=principal, segment_id=str(segment_id), data=data
    )


@router.get("/{segment_id}/members", response_model=Page[ContactRead])
async def list_members(
    segment_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    guard: ReadGuardDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Sort = None,
) -> Page[ContactRead]:
    """The members the caller may see, a page at a time (metered like the contact list)."""
    page = await service.members(
        db=db,
        principal=principal,
        segment_id=str(segment_id),
        limit=limit,
        cursor=cursor,
        sort=sort,
    )
    await guard.check(principal, [str(c.id) for c in page.items])
    return page


@router.get("/{segment_id}/size", response_model=SegmentSize)
async def segment_size(
    segment_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep
) -> SegmentSize:
    """How many members the caller may see."""
    return await service.size(db=db, principal=principal, segment_id=str(segment_id))
