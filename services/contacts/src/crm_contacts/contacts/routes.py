"""HTTP routes of /contacts: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_contacts.contacts import service
from crm_contacts.contacts.schemas import ContactCreate, ContactRead, LifecycleStage
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/contacts", tags=["contacts"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ContactRead)
async def create_contact(
    data: ContactCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> ContactRead:
    contact = await service.create_contact(
        db=db, principal=principal, data=data, phone_region=request.app.state.settings.phone_region
    )
    response.headers["Location"] = f"{request.url.path}/{contact.id}"
    response.headers["ETag"] = f'"{contact.version}"'
    return contact


@router.get("/{contact_id}", response_model=ContactRead)
async def get_contact(
    contact_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> ContactRead:
    contact = await service.get_contact(db=db, principal=principal, contact_id=str(contact_id))
    response.headers["ETag"] = f'"{contact.version}"'
    return contact


@router.get("", response_model=Page[ContactRead])
async def list_contacts(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[
        str | None, Query(max_length=200, description="e.g. -created_at,first_name")
    ] = None,
    owner_id: uuid.UUID | None = None,
    lifecycle_stage: LifecycleStage | None = None,
) -> Page[ContactRead]:
    return await service.list_contacts(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        owner_id=str(owner_id) if owner_id else None,
        lifecycle_stage=lifecycle_stage,
    )
