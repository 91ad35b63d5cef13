"""Erasing a person for a privacy request: personal data out, a tombstone and one event left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.activities.models import Activity
from crm_contacts.audit import service as audit
from crm_contacts.audit.models import AuditEntry
from crm_contacts.common import utcnow
from crm_contacts.contacts.models import Contact
from crm_contacts.exports import erasure as exports
from crm_contacts.leads.models import Lead
from crm_contacts.requests.models import ClientRequest
from crm_contacts.segments.service import move_memberships
from crm_contacts.tasks.models import Task
from crm_contacts.timeline.models import TimelineEntry
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.contacts import ContactErased
from crm_kernel.db import Database
from crm_kernel.outbox import add_event
from crm_kernel.problems import Forbidden, NotFound

# Keys of audit snapshots that hold personal data (of the contact or about it).
PERSONAL_KEYS = frozenset(
    {"first_name", "last_name", "email", "phone", "position", "tags", "custom", "consent"}
    | {"summary", "subject", "description", "title", "message", "company_name"}
)
ERASED_TEXT = ""


class Erasure(BaseModel):
    """What the audit log keeps of an erasure: no personal data, only counts."""

    id: str
    erased_at: datetime
    activities: int
    requests: int
    tasks: int
    timeline_entries: int
    segment_memberships: int
    exports: int


def _redact(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {k: (None if k in PERSONAL_KEYS else v) for k, v in snapshot.items()}


async def _redact_audit(session: AsyncSession, record_ids: list[str]) -> None:
    """Past audit rows of the contact and of its activities, requests, tasks, leads lose their text."""
    rows = await session.scalars(select(AuditEntry).where(AuditEntry.record_id.in_(record_ids)))
    for row in rows:
        row.before = _redact(row.before)
        row.after = _redact(row.after)


async def _drop_search_row(session: AsyncSession, contact_id: str) -> None:
    """SQLite's FTS row goes (PostgreSQL's generated tsvector follows the emptied columns)."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            text(
                "DELETE FROM contacts_fts WHERE rowid ="
                " (SELECT key FROM contact_search_keys WHERE contact_id = :id)"
            ),
            {"id": contact_id},
        )


async def _blank(session: AsyncSession, model: Any, contact_id: str, **values: Any) -> list[str]:
    """Blank the text of one contact's rows of a table; returns their ids (for the audit)."""
    ids = list(await session.scalars(select(model.id).where(model.contact_id == contact_id)))
    if ids:
        await session.execute(
            update(model)
            .where(model.contact_id == contact_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return ids


async def erase_contact(*, db: Database, principal: Principal, contact_id: str) -> None:
    """Remove a person's personal data (admins): the contact becomes a tombstone in the trash."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("Only admins may erase a person.")
    now = utcnow()
    async with db.transaction() as session:
        contact = await session.scalar(
            select(Contact).where(Contact.id == contact_id, Contact.erased_at.is_(None))
        )
        if contact is None:
            raise NotFound(f"No contact {contact_id} (or it was erased already).")
        email, phone = contact.email, contact.phone
        contact.first_name = ERASED_TEXT
        contact.last_name = contact.email = contact.phone = contact.position = None
        contact.tags, contact.custom = [], {}
        contact.consent_email = contact.consent_sms = False
        contact.deleted_at = contact.deleted_at or now
        contact.erased_at = contact.updated_at = now
        activities = await _blank(session, Activity, contact_id, summary=ERASED_TEXT)
        requests = await _blank(
            session, ClientRequest, contact_id, subject=ERASED_TEXT, description=None
        )
        tasks = await _blank(session, Task, contact_id, title=ERASED_TEXT)
        leads = await _blank(session, Lead, contact_id, title=None, message=None, company_name=None)
        dropped = await session.execute(
            delete(TimelineEntry).where(TimelineEntry.contact_id == contact_id)
        )
        # Static memberships go too (announced per segment, as a merge does).
        segments = await move_memberships(
            session, from_id=contact_id, to_id=None, actor=principal.user_id
        )
        await session.flush()
        await _drop_search_row(session, contact_id)
        await _redact_audit(session, [contact_id, *activities, *requests, *tasks, *leads])
        # Stored exports keep no trace either: their row, and the e-mail/phone searched for.
        in_exports = await exports.remove_contact(session, contact_id)
        await exports.scrub_filters(session, email, phone)
        audit.record(
            session,
            actor_id=principal.user_id,
            action="erase",
            record_type="contact",
            record_id=contact_id,
            before=None,
            after=Erasure(
                id=contact_id,
                erased_at=now,
                activities=len(activities),
                requests=len(requests),
                tasks=len(tasks),
                timeline_entries=int(dropped.rowcount or 0),  # type: ignore[attr-defined]
                segment_memberships=len(segments),
                exports=in_exports,
            ),
        )
        erased = ContactErased(
            id=contact_id,
            erased_at=now.isoformat(),
            actor_id=principal.user_id,
            email=email,
            phone=phone,
        )
        await add_event(session, erased, subject=contact_id, actor=principal.user_id)
