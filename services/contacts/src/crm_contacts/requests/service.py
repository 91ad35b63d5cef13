"""Client request use cases: visibility and write rights follow the contact."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts import access
from crm_contacts.audit.service import audit_change
from crm_contacts.common import publish_state, stale, utcnow
from crm_contacts.contacts.models import Contact
from crm_contacts.requests.models import ClientRequest
from crm_contacts.requests.schemas import (
    TRANSITIONS,
    RequestCreate,
    RequestRead,
    RequestStatus,
    RequestUpdate,
)
from crm_kernel.auth import Principal
from crm_kernel.contracts.contacts import (
    RequestOpened,
    RequestReopened,
    RequestResolved,
    RequestState,
    RequestUpdated,
)
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, Forbidden, NotFound, Unprocessable
from crm_kernel.versioning import check_version

RECORD_TYPE = "request"
SORTABLE = {
    "opened_at": ClientRequest.opened_at,
    "updated_at": ClientRequest.updated_at,
}


def to_read(request: ClientRequest) -> RequestRead:
    return RequestRead.model_validate(request)


def _visible(principal: Principal) -> Select[Any]:
    """Requests on live contacts the caller sees."""
    return (
        select(ClientRequest)
        .join(Contact, Contact.id == ClientRequest.contact_id)
        .where(Contact.deleted_at.is_(None), owner_filter(principal, Contact.owner_id))
    )


async def _ensure_may_assign(session: AsyncSession, principal: Principal, assignee: str) -> None:
    if not await access.may_assign(session, principal, assignee):
        raise Forbidden(
            "You may not assign this user.",
            errors=[
                {"field": "assignee_id", "location": "body", "message": "not assignable by you"}
            ],
        )


async def _contact_for_writing(
    session: AsyncSession, principal: Principal, contact_id: str
) -> Contact:
    """The live, visible contact a request is opened on; 422 naming `contact_id` otherwise."""
    contact = (
        await session.execute(
            select(Contact).where(
                Contact.id == contact_id,
                Contact.deleted_at.is_(None),
                owner_filter(principal, Contact.owner_id),
            )
        )
    ).scalar_one_or_none()
    if contact is None:
        raise Unprocessable(
            f"No contact {contact_id} that you may see.",
            errors=[{"field": "contact_id", "location": "body", "message": "no such contact"}],
        )
    access.ensure_may_write(principal, contact.owner_id)
    return contact


async def _load(
    session: AsyncSession, principal: Principal, request_id: str
) -> tuple[ClientRequest, str]:
    """A visible request and its contact's owner; 404 otherwise."""
    row = (
        await session.execute(
            _visible(principal).add_columns(Contact.owner_id).where(ClientRequest.id == request_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No request {request_id}.")
    return row[0], row[1]


async def open_request(*, db: Database, principal: Principal, data: RequestCreate) -> RequestRead:
    """Open a request on a contact the caller may change."""
    now = utcnow()
    assignee = str(data.assignee_id) if data.assignee_id else principal.user_id
    async with db.transaction() as session:
        contact = await _contact_for_writing(session, principal, str(data.contact_id))
        await _ensure_may_assign(session, principal, assignee)
        request = ClientRequest(
            id=str(new_id()),
            contact_id=contact.id,
            subject=data.subject,
            description=data.description,
            status=RequestStatus.OPEN,
            opened_at=now,
            resolved_at=None,
            assignee_id=assignee,
            created_at=now,
            updated_at=now,
        )
        session.add(request)
        await session.flush()
        read = to_read(request)
        audit_change(session, principal, RECORD_TYPE, "create", None, read)
        await publish_state(session, RequestOpened, read, actor=principal.user_id)
    return read


async def get_request(*, db: Database, principal: Principal, request_id: str) -> RequestRead:
    """One request, or 404 when the caller may not see its contact."""
    async with db.session() as session:
        request, _owner = await _load(session, principal, request_id)
        return to_read(request)


async def list_requests(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    status: str | None = None,
    contact_id: str | None = None,
    assignee_id: str | None = None,
) -> Page[RequestRead]:
    """The requests the caller may see, newest first unless sorted otherwise."""
    query = _visible(principal)
    if status:
        query = query.where(ClientRequest.status == status)
    if contact_id:
        query = query.where(ClientRequest.contact_id == contact_id)
    if assignee_id:
        query = query.where(ClientRequest.assignee_id == assignee_id)
    keys = parse_sort(sort, SORTABLE, "-opened_at", ClientRequest.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[RequestRead](items=[to_read(row[0]) for row in rows], next_cursor=next_cursor)


def _move(request: ClientRequest, target: str) -> type[RequestState]:
    """Apply a status change (409 if not allowed) and say which event tells it."""
    if target == request.status:
        return RequestUpdated
    if target not in TRANSITIONS[request.status]:
        raise Conflict(
            f"A request cannot go from {request.status} to {target}.",
            errors=[
                {
                    "field": "status",
                    "location": "body",
                    "message": f"allowed from {request.status}: "
                    + ", ".join(sorted(TRANSITIONS[request.status])),
                }
            ],
        )
    request.status = target
    if target == RequestStatus.RESOLVED:
        request.resolved_at = utcnow()
        return RequestResolved
    if target == RequestStatus.OPEN:
        request.resolved_at = None
        return RequestReopened
    return RequestUpdated


async def update_request(
    *,
    db: Database,
    principal: Principal,
    request_id: str,
    data: RequestUpdate,
    expected_version: int | None,
) -> RequestRead:
    """Change a request or move its status; 409 on an illegal move, 412 if stale."""
    sent = data.model_fields_set
    try:
        async with db.transaction() as session:
            request, owner = await _load(session, principal, request_id)
            access.ensure_may_write(principal, owner)
            check_version(request.version, expected_version, data.version)
            before = to_read(request)
            kind: type[RequestState] = RequestUpdated
            if "status" in sent and data.status is not None:
                kind = _move(request, data.status)
            for name in ("subject", "description"):
                if name in sent:
                    setattr(request, name, getattr(data, name))
            if "assignee_id" in sent and str(data.assignee_id) != request.assignee_id:
                await _ensure_may_assign(session, principal, str(data.assignee_id))
                request.assignee_id = str(data.assignee_id)
            request.updated_at = utcnow()
            await session.flush()
            read = to_read(request)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
            await publish_state(session, kind, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("request") from exc
    return read
