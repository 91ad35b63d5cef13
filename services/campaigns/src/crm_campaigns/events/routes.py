"""HTTP routes of /events (staff) and /public/events (the signed registration link)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile, status

from crm_campaigns.events import attendance_csv, service
from crm_campaigns.events.links import read_token
from crm_campaigns.events.schemas import (
    AttendanceImportResult,
    AttendanceRequest,
    AttendanceResult,
    EventCreate,
    EventRead,
    EventStats,
    EventUpdate,
    InviteRequest,
    InviteResult,
    ParticipantRead,
    ParticipantStatus,
    PublicEventView,
    PublicRegistration,
)
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser, Principal, Role, require_roles
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.problems import NotFound
from crm_kernel.signing import BadToken
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/events", tags=["marketing events"])
public_router = APIRouter(prefix="/public/events", tags=["public"])

# Events are marketing's: marketers and admins change them; every staff member reads.
Marketer = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EventRead)
async def create_event(
    data: EventCreate, principal: Marketer, db: DatabaseDep, request: Request, response: Response
) -> EventRead:
    """Create a seminar, webinar, exhibition or other event."""
    event = await service.create_event(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{request.url.path}/{event.id}"
    response.headers["ETag"] = etag(event.version)
    return event


@router.get("", response_model=Page[EventRead])
async def list_events(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    upcoming: bool | None = None,
) -> Page[EventRead]:
    """Events, latest start first; `upcoming=true|false` for future or past ones."""
    return await service.list_events(db=db, limit=limit, cursor=cursor, upcoming=upcoming)


@router.get("/{event_id}", response_model=EventRead)
async def get_event(
    event_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> EventRead:
    event = await service.get_event(db=db, event_id=str(event_id))
    response.headers["ETag"] = etag(event.version)
    return event


@router.patch("/{event_id}", response_model=EventRead)
async def update_event(
    event_id: uuid.UUID,
    data: EventUpdate,
    principal: Marketer,
    db: DatabaseDep,
    if_match: IfMatch,
    response: Response,
) -> EventRead:
    """Change an event (If-Match or `version` guards against lost updates)."""
    event = await service.update_event(
        db=db, principal=principal, event_id=str(event_id), data=data, if_match=if_match
    )
    response.headers["ETag"] = etag(event.version)
    return event


@router.post("/{event_id}/invite", response_model=InviteResult)
async def invite(
    event_id: uuid.UUID, data: InviteRequest, principal: Marketer, db: DatabaseDep, request: Request
) -> InviteResult:
    """Put the segments' contacts (minus exclusions) on the list; with `template_id`, send it."""
    return await service.invite(
        db=db,
        settings=request.app.state.settings,
        principal=principal,
        event_id=str(event_id),
        data=data,
    )


@router.get("/{event_id}/participants", response_model=Page[ParticipantRead])
async def list_participants(
    event_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    status: ParticipantStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ParticipantRead]:
    """The check-in list (contacts the caller may see), filtered by status."""
    return await service.list_participants(
        db=db,
        principal=principal,
        event_id=str(event_id),
        status=status,
        limit=limit,
        cursor=cursor,
    )


@router.post("/{event_id}/attendance", response_model=AttendanceResult)
async def mark_attendance(
    event_id: uuid.UUID, data: AttendanceRequest, principal: CurrentUser, db: DatabaseDep
) -> AttendanceResult:
    """Check contacts in (`attended: true`, walk-ins join the list) or mark them not come."""
    return await service.mark_attendance(
        db=db,
        principal=principal,
        event_id=str(event_id),
        contact_ids=[str(c) for c in data.contact_ids],
        attended=data.attended,
    )


@router.post("/{event_id}/attendance/import", response_model=AttendanceImportResult)
async def import_attendance(
    event_id: uuid.UUID, file: UploadFile, principal: CurrentUser, db: DatabaseDep
) -> AttendanceImportResult:
    """Attendees from a CSV with a `contact_id` or an `email` column; bad rows are listed."""
    raw = await file.read(attendance_csv.MAX_BYTES + 1)
    return await attendance_csv.import_attendees(
        db=db, principal=principal, event_id=str(event_id), raw=raw
    )


@router.get("/{event_id}/stats", response_model=EventStats)
async def event_stats(event_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep) -> EventStats:
    """Invited, registered, attended, no-shows, participation coefficient, deals that followed."""
    return await service.stats(db=db, event_id=str(event_id))


# ---- public: reached through the gateway's /public/e/{token} -----------------------------------


def _invitation(request: Request, token: str) -> tuple[str, str]:
    try:
        invitation = read_token(request.app.state.settings, token)
    except BadToken as exc:
        raise NotFound("This link is not valid.") from exc
    return invitation.event_id, invitation.contact_id


@public_router.get("/{token}", response_model=PublicEventView)
async def public_event(token: str, request: Request, db: DatabaseDep) -> PublicEventView:
    """The registration page's data; 404 for a bad or tampered token (never says which)."""
    event_id, contact_id = _invitation(request, token)
    return await service.public_view(db=db, event_id=event_id, contact_id=contact_id)


@public_router.post("/{token}/register", response_model=PublicRegistration)
async def public_register(token: str, request: Request, db: DatabaseDep) -> PublicRegistration:
    """Register the link's contact; again is fine; 409 when the event is full."""
    event_id, contact_id = _invitation(request, token)
    await service.register(db=db, event_id=event_id, contact_id=contact_id)
    return PublicRegistration(registered=True)
