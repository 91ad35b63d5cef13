"""Audit use cases: recording inside a caller's transaction, and reading for admins."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.audit.models import AuditEntry
from crm_contacts.audit.schemas import AuditRead
from crm_contacts.common import utcnow
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort


def _snapshot(state: BaseModel | None) -> dict[str, Any] | None:
    return state.model_dump(mode="json") if state is not None else None


def record(
    session: AsyncSession,
    *,
    actor_id: str | None,
    action: str,
    record_type: str,
    record_id: str,
    before: BaseModel | None,
    after: BaseModel | None,
) -> None:
    """Add an audit row to the caller's transaction (it commits or rolls back with the change)."""
    session.add(
        AuditEntry(
            id=str(new_id()),
            at=utcnow(),
            actor_id=actor_id,
            action=action,
            record_type=record_type,
            record_id=record_id,
            before=_snapshot(before),
            after=_snapshot(after),
        )
    )


def audit_change(
    session: AsyncSession,
    principal: Principal,
    record_type: str,
    action: str,
    before: BaseModel | None,
    after: BaseModel,
) -> None:
    """Audit a change the caller made to a record (`after` carries the record's `id`)."""
    record(
        session,
        actor_id=principal.user_id,
        action=action,
        record_type=record_type,
        record_id=str(after.id),  # type: ignore[attr-defined]
        before=before,
        after=after,
    )


async def list_entries(
    *,
    db: Database,
    limit: int,
    cursor: str | None,
    record_type: str | None = None,
    record_id: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
) -> Page[AuditRead]:
    """Audit entries, newest first, filtered and paged by cursor."""
    query = select(AuditEntry)
    if record_type:
        query = query.where(AuditEntry.record_type == record_type)
    if record_id:
        query = query.where(AuditEntry.record_id == record_id)
    if actor_id:
        query = query.where(AuditEntry.actor_id == actor_id)
    if action:
        query = query.where(AuditEntry.action == action)
    keys = parse_sort(None, {"at": AuditEntry.at}, "-at", AuditEntry.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[AuditRead](
        items=[AuditRead.model_validate(row[0]) for row in rows], next_cursor=next_cursor
    )
