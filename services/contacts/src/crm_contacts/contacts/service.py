"""Contact use cases: each one transaction, events written to the outbox with the change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from crm_contacts.contacts.models import Contact
from crm_contacts.contacts.schemas import ContactCreate, ContactRead
from crm_contacts.phones import to_e164
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.db import Database
from crm_kernel.directory import can_see_owner, owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Forbidden, NotFound

SORTABLE = {
    "created_at": Contact.created_at,
    "updated_at": Contact.updated_at,
    "first_name": Contact.first_name,
}


def to_read(contact: Contact) -> ContactRead:
    return ContactRead.model_validate(
        {
            **{c: getattr(contact, c) for c in ContactRead.model_fields if c != "consent"},
            "consent": {"email": contact.consent_email, "sms": contact.consent_sms},
        }
    )


async def create_contact(
    *, db: Database, principal: Principal, data: ContactCreate, phone_region: str
) -> ContactRead:
    """Add a person to the base, owned by the caller unless they may assign someone else."""
    owner_id = str(data.owner_id or principal.user_id)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        if owner_id != principal.user_id and not await _may_assign(session, principal, owner_id):
            raise Forbidden("You may not make this user the owner.")
        contact = Contact(
            id=str(new_id()),
            first_name=data.first_name,
            last_name=data.last_name,
            email=data.email.lower() if data.email else None,
            phone=to_e164(data.phone, phone_region) if data.phone else None,
            company_id=str(data.company_id) if data.company_id else None,
            position=data.position,
            owner_id=owner_id,
            tags=sorted(set(data.tags)),
            lifecycle_stage=data.lifecycle_stage,
            consent_email=data.consent.email,
            consent_sms=data.consent.sms,
            custom=data.custom,
            version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(contact)
        read = to_read(contact)
        await add_event(
            session,
            ContactCreated.model_validate(read.model_dump(mode="json")),
            subject=contact.id,
            actor=principal.user_id,
        )
    return read


async def _may_assign(session: Any, principal: Principal, owner_id: str) -> bool:
    """Admins assign anyone; a head of sales their team members; others only themselves."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.HEAD_OF_SALES:
        return await can_see_owner(session, principal, owner_id)
    return False


async def get_contact(*, db: Database, principal: Principal, contact_id: str) -> ContactRead:
    """One contact, or 404 when it does not exist or the caller may not see it."""
    async with db.session() as session:
        contact = (
            await session.execute(
                select(Contact).where(
                    Contact.id == contact_id, owner_filter(principal, Contact.owner_id)
                )
            )
        ).scalar_one_or_none()
    if contact is None:
        raise NotFound(f"No contact {contact_id}.")
    return to_read(contact)


async def list_contacts(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    owner_id: str | None = None,
    lifecycle_stage: str | None = None,
) -> Page[ContactRead]:
    """The contacts the caller may see, filtered, sorted and paged by cursor."""
    query = select(Contact).where(owner_filter(principal, Contact.owner_id))
    if owner_id:
        query = query.where(Contact.owner_id == owner_id)
    if lifecycle_stage:
        query = query.where(Contact.lifecycle_stage == lifecycle_stage)
    keys = parse_sort(sort, SORTABLE, "-created_at", Contact.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[ContactRead](items=[to_read(row[0]) for row in rows], next_cursor=next_cursor)
