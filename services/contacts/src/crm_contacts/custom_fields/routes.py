"""HTTP routes of /custom-fields: admins define, everyone reads."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_contacts.custom_fields import service
from crm_contacts.custom_fields.schemas import (
    CustomFieldCreate,
    CustomFieldRead,
    CustomFieldUpdate,
    Entity,
)
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser, CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/custom-fields", tags=["custom fields"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomFieldRead)
async def create_field(
    data: CustomFieldCreate,
    principal: AdminUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> CustomFieldRead:
    """Define a typed field for contacts or companies (admins)."""
    field = await service.create_field(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{request.url.path}/{field.id}"
    response.headers["ETag"] = etag(field.version)
    return field


@router.get("", response_model=Page[CustomFieldRead])
async def list_fields(
    _principal: CurrentUser,
    db: DatabaseDep,
    entity: Entity | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Page[CustomFieldRead]:
    """The definitions, by key (everyone: forms need them)."""
    return await service.list_fields(db=db, entity=entity, limit=limit, cursor=cursor)


@router.get("/{field_id}", response_model=CustomFieldRead)
async def get_field(
    field_id: uuid.UUID, _principal: CurrentUser, db: DatabaseDep, response: Response
) -> CustomFieldRead:
    field = await service.get_field(db=db, field_id=str(field_id))
    response.headers["ETag"] = etag(field.version)
    return field


@router.patch("/{field_id}", response_model=CustomFieldRead)
async def update_field(
    field_id: uuid.UUID,
    data: CustomFieldUpdate,
    principal: AdminUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> CustomFieldRead:
    """Change the label, an enum's options or `required` (admins)."""
    field = await service.update_field(
        db=db, principal=principal, field_id=str(field_id), data=data, expected_version=if_match
    )
    response.headers["ETag"] = etag(field.version)
    return field


@router.delete("/{field_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_field(
    field_id: uuid.UUID, principal: AdminUser, db: DatabaseDep, if_match: IfMatch
) -> Response:
    """Remove a definition no record uses any more (admins; 409 while in use)."""
    await service.delete_field(
        db=db, principal=principal, field_id=str(field_id), expected_version=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
