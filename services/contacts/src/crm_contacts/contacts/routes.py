"""HTTP routes of /contacts: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import AwareDatetime

from crm_contacts.contacts import erasure, merge, service
from crm_contacts.contacts.schemas import (
    BulkReassign,
    BulkReassigned,
    ConsentEntryRead,
    ContactCreate,
    ContactRead,
    ContactUpdate,
    DuplicateRead,
    LifecycleStage,
    MergeRequest,
    Reassign,
    ViewerRead,
)
from crm_contacts.metering.service import ReadGuardDep
from crm_contacts.segments.fields import parse_filter_param
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/contacts", tags=["contacts"])

Force = Annotated[
    bool, Query(description="Save even if a live contact has the same e-mail or phone.")
]


def _phone_region(request: Request) -> str:
    region: str = request.app.state.settings.phone_region
    return region


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ContactRead)
async def create_contact(
    data: ContactCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
    force: Force = False,
) -> ContactRead:
    """Add a person; 409 naming `existing_id` if one has the same e-mail or phone."""
    contact = await service.create_contact(
        db=db, principal=principal, data=data, phone_region=_phone_region(request), force=force
    )
    response.headers["Location"] = f"{request.url.path}/{contact.id}"
    response.headers["ETag"] = etag(contact.version)
    return contact


@router.post("/reassign", response_model=BulkReassigned)
async def reassign_contacts(
    data: BulkReassign, principal: CurrentUser, db: DatabaseDep
) -> BulkReassigned:
    """Give many contacts one new owner: all or none (admins; heads of sales in their teams)."""
    return await service.reassign_contacts(
        db=db,
        principal=principal,
        contact_ids=[str(i) for i in data.ids],
        owner_id=str(data.owner_id),
    )


@router.get("/{contact_id}", response_model=ContactRead)
async def get_contact(
    contact_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    guard: ReadGuardDep,
    response: Response,
) -> ContactRead:
    """One contact; the ETag is its version, for If-Match on a later change."""
    contact = await service.get_contact(db=db, principal=principal, contact_id=str(contact_id))
    await guard.check(principal, [str(contact.id)])
    response.headers["ETag"] = etag(contact.version)
    return contact


@router.get("", response_model=Page[ContactRead])
async def list_contacts(
    principal: CurrentUser,
    db: DatabaseDep,
    guard: ReadGuardDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[
        str | None, Query(max_length=200, description="e.g. -created_at,first_name")
    ] = None,
    owner_id: uuid.UUID | None = None,
    lifecycle_stage: LifecycleStage | None = None,
    company_id: uuid.UUID | None = None,
    trash: Annotated[
        bool, Query(description="List the trash instead (admins, heads of sales).")
    ] = False,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Search names, e-mail, phone (any format), company."),
    ] = None,
    team_id: Annotated[
        uuid.UUID | None, Query(description="Owned by a member of this team.")
    ] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    created_after: AwareDatetime | None = None,
    created_before: AwareDatetime | None = None,
    updated_after: AwareDatetime | None = None,
    updated_before: AwareDatetime | None = None,
    filter_: Annotated[
        str | None,
        Query(
            alias="filter",
            max_length=8000,
            description='JSON in the segments\' filter language, e.g. {"field": "tags", '
            '"op": "has", "value": "vip"}.',
        ),
    ] = None,
) -> Page[ContactRead]:
    """The contacts the caller may see, a page at a time; `q` searches them."""
    page = await service.list_contacts(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        owner_id=str(owner_id) if owner_id else None,
        lifecycle_stage=lifecycle_stage,
        company_id=str(company_id) if company_id else None,
        trash=trash,
        q=q,
        phone_region=_phone_region(request),
        team_id=str(team_id) if team_id else None,
        tag=tag,
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
        raw_filter=parse_filter_param(filter_) if filter_ is not None else None,
    )
    await guard.check(principal, [str(c.id) for c in page.items])
    return page


@router.patch("/{contact_id}", response_model=ContactRead)
async def update_contact(
    contact_id: uuid.UUID,
    data: ContactUpdate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
    if_match: IfMatch,
    force: Force = False,
) -> ContactRead:
    """Change fields (`null` clears one); 412 if If-Match or `version` is stale."""
    contact = await service.update_contact(
        db=db,
        principal=principal,
        contact_id=str(contact_id),
        data=data,
        expected_version=if_match,
        phone_region=_phone_region(request),
        force=force,
    )
    response.headers["ETag"] = etag(contact.version)
    return contact


@router.delete("/{contact_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_contact(
    contact_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, if_match: IfMatch
) -> Response:
    """Move a contact to the trash (soft; restorable)."""
    await service.delete_contact(
        db=db, principal=principal, contact_id=str(contact_id), expected_version=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{contact_id}/restore", response_model=ContactRead)
async def restore_contact(
    contact_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> ContactRead:
    """Bring a contact back from the trash (admins, heads of sales)."""
    contact = await service.restore_contact(
        db=db, principal=principal, contact_id=str(contact_id), expected_version=if_match
    )
    response.headers["ETag"] = etag(contact.version)
    return contact


@router.post("/{contact_id}/reassign", response_model=ContactRead)
async def reassign_contact(
    contact_id: uuid.UUID,
    data: Reassign,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> ContactRead:
    """Give a contact a new owner (admins; heads of sales within their teams)."""
    contact = await service.reassign_contact(
        db=db,
        principal=principal,
        contact_id=str(contact_id),
        owner_id=str(data.owner_id),
        expected_version=if_match,
    )
    response.headers["ETag"] = etag(contact.version)
    return contact


@router.get("/{contact_id}/consent", response_model=list[ConsentEntryRead])
async def consent_history(
    contact_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, guard: ReadGuardDep
) -> list[ConsentEntryRead]:
    """The consent ledger of a contact: every change with source, time and actor."""
    ledger = await service.consent_history(db=db, principal=principal, contact_id=str(contact_id))
    await guard.check(principal, [str(contact_id)])
    return ledger


@router.post("/{contact_id}/erase", status_code=status.HTTP_204_NO_CONTENT)
async def erase_contact(contact_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep) -> Response:
    """Erase a person for a privacy request (admins): personal data goes, a tombstone stays."""
    await erasure.erase_contact(db=db, principal=principal, contact_id=str(contact_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{contact_id}/duplicates", response_model=list[DuplicateRead])
async def contact_duplicates(
    contact_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, guard: ReadGuardDep
) -> list[DuplicateRead]:
    """Likely twins the caller may see (same e-mail or phone, or similar name and company)."""
    found = await merge.duplicates(db=db, principal=principal, contact_id=str(contact_id))
    await guard.check(principal, [str(contact_id), *(str(d.contact.id) for d in found)])
    return found


@router.post("/{contact_id}/merge", response_model=ContactRead)
async def merge_contact(
    contact_id: uuid.UUID,
    data: MergeRequest,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> ContactRead:
    """Merge `other_id` into this contact (the survivor; If-Match is its version)."""
    contact = await merge.merge_contacts(
        db=db,
        principal=principal,
        survivor_id=str(contact_id),
        other_id=str(data.other_id),
        expected_version=if_match,
    )
    response.headers["ETag"] = etag(contact.version)
    return contact


@router.get("/{contact_id}/viewers", response_model=list[ViewerRead])
async def contact_viewers(
    contact_id: uuid.UUID, principal: CurrentUser, guard: ReadGuardDep
) -> list[ViewerRead]:
    """Who read this contact, last read first (admins)."""
    return await guard.viewers(principal, str(contact_id))
