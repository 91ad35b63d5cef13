"""When a user leaves: every contact and company they own goes to their successor, as one job."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.audit import service as audit
from crm_contacts.common import publish_state, utcnow
from crm_contacts.companies import service as companies
from crm_contacts.companies.models import Company
from crm_contacts.contacts import service as contacts
from crm_contacts.contacts.models import Contact
from crm_kernel.contracts.contacts import (
    CompanyOwnerChanged,
    ContactOwnerChanged,
    OwnerReassigned,
)
from crm_kernel.contracts.gateway import UserOffboarded
from crm_kernel.outbox import add_event

# Job ids derive from the event id, so the job is the same whatever the delivery.
_JOBS = uuid.UUID("6f1c1d2e-4b1a-4a53-9a53-2f0c6a0e7a11")


async def _move_contacts(session: AsyncSession, event: UserOffboarded) -> int:
    rows = await session.scalars(
        select(Contact).where(
            Contact.owner_id == event.user_id,
            Contact.erased_at.is_(None),
            Contact.merged_into.is_(None),
        )
    )
    moved = 0
    for contact in rows.all():
        before = contacts.to_read(contact)
        contact.owner_id, contact.updated_at = event.successor_id, utcnow()
        await session.flush()
        after = contacts.to_read(contact)
        audit.record(
            session,
            actor_id=event.actor_id,
            action="reassign",
            record_type=contacts.RECORD_TYPE,
            record_id=contact.id,
            before=before,
            after=after,
        )
        await publish_state(
            session,
            ContactOwnerChanged,
            after,
            actor=event.actor_id,
            previous_owner_id=event.user_id,
        )
        moved += 1
    return moved


async def _move_companies(session: AsyncSession, event: UserOffboarded) -> int:
    rows = await session.scalars(select(Company).where(Company.owner_id == event.user_id))
    moved = 0
    for company in rows.all():
        before = companies.to_read(company)
        company.owner_id, company.updated_at = event.successor_id, utcnow()
        await session.flush()
        after = companies.to_read(company)
        audit.record(
            session,
            actor_id=event.actor_id,
            action="reassign",
            record_type=companies.RECORD_TYPE,
            record_id=company.id,
            before=before,
            after=after,
        )
        await publish_state(
            session,
            CompanyOwnerChanged,
            after,
            actor=event.actor_id,
            previous_owner_id=event.user_id,
        )
        moved += 1
    return moved


async def reassign_to_successor(
    session: AsyncSession, event: UserOffboarded, *, event_id: str
) -> None:
    """Move the departed user's records (live and in the trash) in the handler's transaction.

    Each record gets its audit row and `owner_changed` event; the job one
    `owner.reassigned` for notifications to tell the successor (none when the
    user owned nothing).
    """
    if event.successor_id == event.user_id:
        return
    moved_contacts = await _move_contacts(session, event)
    moved_companies = await _move_companies(session, event)
    if not moved_contacts and not moved_companies:
        return
    job = OwnerReassigned(
        job_id=str(uuid.uuid5(_JOBS, event_id)),
        previous_owner_id=event.user_id,
        owner_id=event.successor_id,
        contacts=moved_contacts,
        companies=moved_companies,
        reason="offboarding",
        actor_id=event.actor_id,
        at=utcnow().isoformat(),
    )
    await add_event(session, job, subject=event.successor_id, actor=event.actor_id)
