"""HTTP routes of /audit (admins only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from crm_contacts.audit import service
from crm_contacts.audit.schemas import AuditRead
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Page[AuditRead])
async def list_audit(
    _admin: AdminUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    record_type: Annotated[str | None, Query(max_length=40)] = None,
    record_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[AuditRead]:
    """Who did what to which record, newest first."""
    return await service.list_entries(
        db=db,
        limit=limit,
        cursor=cursor,
        record_type=record_type,
        record_id=str(record_id) if record_id else None,
        actor_id=str(actor_id) if actor_id else None,
        action=action,
    )
