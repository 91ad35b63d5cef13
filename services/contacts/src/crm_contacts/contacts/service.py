"""Contact use cases: each one transaction, with its audit row and outbox events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts import access, search
from crm_contacts.audit import service as audit
from crm_contacts.audit.service import audit_change
from crm_contacts.common import publish_state, stale, utcnow
from crm_contacts.companies.service import ensure_usable_company
from crm_contacts.contacts.models import ConsentEntry, Contact
from crm_contacts.contacts.schemas import (
    BulkReassigned,
    ConsentEntryRead,
    ContactCreate,
    ContactRead,
    ContactUpdate,
)
from crm_contacts.custom_fields.service import validate_custom
from crm_contacts.phones import to_e164
from crm_contacts.segments import fields as filter_fields
from crm_kernel.auth import Principal
from crm_kernel.contracts.contacts import (
    ConsentChanged,
    ContactCreated,
    ContactDeleted,
    ContactOwnerChanged,
    ContactRestored,
    ContactUpdated,
)
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound
from crm_kernel.tables import directory_team_members as team_members
from crm_kernel.versioning import check_version

RECORD_TYPE = "contact"
SORTABLE = {
    "created_at": Contact.created_at,
    "updated_at": Contact.updated_at,
    "first_name": Contact.first_name,
}
# Plain columns a PATCH may set as sent (the others need normalising or checks).
_PLAIN = ("first_name", "last_name", "position", "lifecycle_stage")


def to_read(contact: Contact) -> ContactRead:
    return ContactRead.model_validate(
        {
            **{c: getattr(contact, c) for c in ContactRead.model_fields if c != "consent"},
            "consent": {"email": contact.consent_email, "sms": contact.consent_sms},
        }
    )


def in_trash_condition(trash: bool) -> ColumnElement[bool]:
    """Live contacts, or those in the trash that may come back (not erased, not merged away)."""
    if not trash:
        return Contact.deleted_at.is_(None)
    return and_(
        Contact.deleted_at.is_not(None), Contact.erased_at.is_(None), Contact.merged_into.is_(None)
    )


def _has_tag(tag: str, *, sqlite: bool) -> ColumnElement[bool]:
    """Contacts whose `tags` (a JSON array) hold this tag."""
    if sqlite:
        elements = func.json_each(Contact.tags).table_valued("value")
        return select(elements.c.value).where(elements.c.value == tag).exists()
    return cast(Contact.tags, JSONB).contains([tag])


async def load(
    session: AsyncSession, principal: Principal, contact_id: str, *, in_trash: bool = False
) -> Contact:
    """The contact if the caller may see it (live, or in the trash), else 404."""
    deleted = in_trash_condition(in_trash)
    contact = (
        await session.execute(
            select(Contact).where(
                Contact.id == contact_id, deleted, owner_filter(principal, Contact.owner_id)
            )
        )
    ).scalar_one_or_none()
    if contact is None:
        raise NotFound(f"No contact {contact_id}" + (" in the trash." if in_trash else "."))
    return contact


async def _ensure_no_duplicate(
    session: AsyncSession, *, email: str | None, phone: str | None, exclude_id: str | None = None
) -> None:
    """409 naming the existing contact when a live one has this e-mail or phone.

    The whole base is searched, not only what the caller sees: a colleague's
    client is still a duplicate. Only its id is revealed (reading it is 404).
    """
    for field, column, value, what in (
        ("email", Contact.email, email, "e-mail"),
        ("phone", Contact.phone, phone, "phone"),
    ):
        if value is None:
            continue
        query = select(Contact.id).where(column == value, Contact.deleted_at.is_(None))
        if exclude_id is not None:
            query = query.where(Contact.id != exclude_id)
        existing = await session.scalar(query.order_by(Contact.created_at, Contact.id).limit(1))
        if existing is not None:
            raise Conflict(
                f"A contact with this {what} already exists: {existing}. "
                "Send ?force=true to add it anyway.",
                errors=[
                    {
                        "field": field,
                        "location": "body",
                        "message": f"a contact with this {what} exists",
                        "existing_id": existing,
                    }
                ],
                existing_id=existing,
            )


def _record_consent(
    session: AsyncSession,
    contact: Contact,
    *,
    channel: str,
    granted: bool,
    source: str,
    actor: str | None,
) -> ConsentChanged:
    """A ledger row for one channel's change, and the event announcing it."""
    at = utcnow()
    session.add(
        ConsentEntry(
            id=str(new_id()),
            contact_id=contact.id,
            channel=channel,
            granted=granted,
            source=source,
            actor_id=actor,
            at=at,
        )
    )
    return ConsentChanged(
        contact_id=contact.id,
        channel=channel,
        granted=granted,
        source=source,
        actor_id=actor,
        changed_at=at.isoformat(),
        email=contact.email,
        phone=contact.phone,
    )


async def create_contact(
    *, db: Database, principal: Principal, data: ContactCreate, phone_region: str, force: bool
) -> ContactRead:
    """Add a person, owned by the caller unless they may assign someone else; 409 on a twin."""
    owner_id = str(data.owner_id or principal.user_id)
    email = data.email.lower() if data.email else None
    phone = to_e164(data.phone, phone_region) if data.phone else None
    now = utcnow()
    async with db.transaction() as session:
        if not await access.may_assign(session, principal, owner_id):
            raise access.owner_not_assignable()
        if data.company_id is not None:
            await ensure_usable_company(session, principal, str(data.company_id))
        if not force:
            await _ensure_no_duplicate(session, email=email, phone=phone)
        contact = Contact(
            id=str(new_id()),
            first_name=data.first_name,
            last_name=data.last_name,
            email=email,
            phone=phone,
            company_id=str(data.company_id) if data.company_id else None,
            position=data.position,
            owner_id=owner_id,
            tags=sorted(set(data.tags)),
            lifecycle_stage=data.lifecycle_stage,
            consent_email=data.consent.email,
            consent_sms=data.consent.sms,
            custom=await validate_custom(session, "contact", data.custom),
            created_at=now,
            updated_at=now,
        )
        session.add(contact)
        await session.flush()
        read = to_read(contact)
        audit_change(session, principal, RECORD_TYPE, "create", None, read)
        await publish_state(session, ContactCreated, read, actor=principal.user_id)
        for channel, granted in (("email", data.consent.email), ("sms", data.consent.sms)):
            if granted:
                event = _record_consent(
                    session,
                    contact,
                    channel=channel,
                    granted=True,
                    source=data.consent_source,
                    actor=principal.user_id,
                )
                await add_event(session, event, subject=contact.id, actor=principal.user_id)
    return read


async def get_contact(*, db: Database, principal: Principal, contact_id: str) -> ContactRead:
    """One live contact, or 404 when it does not exist or the caller may not see it."""
    async with db.session() as session:
        return to_read(await load(session, principal, contact_id))


async def list_contacts(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    owner_id: str | None = None,
    lifecycle_stage: str | None = None,
    company_id: str | None = None,
    trash: bool = False,
    q: str | None = None,
    phone_region: str = "RU",
    team_id: str | None = None,
    tag: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    raw_filter: object | None = None,
) -> Page[ContactRead]:
    """The contacts the caller may see (or their trash), filtered, sorted and paged by cursor.

    `raw_filter` is the segments' filter language (`?filter=`), on top of the other filters.
    """
    if trash:
        access.ensure_trash_role(principal)
    query = select(Contact).where(
        in_trash_condition(trash), owner_filter(principal, Contact.owner_id)
    )
    if owner_id:
        query = query.where(Contact.owner_id == owner_id)
    if lifecycle_stage:
        query = query.where(Contact.lifecycle_stage == lifecycle_stage)
    if company_id:
        query = query.where(Contact.company_id == company_id)
    if team_id:
        team = select(team_members.c.user_id).where(team_members.c.team_id == team_id)
        query = query.where(Contact.owner_id.in_(team))
    if tag:
        query = query.where(_has_tag(tag, sqlite=db.is_sqlite))
    for bound, condition in (
        (created_after, lambda m: Contact.created_at >= m),
        (created_before, lambda m: Contact.created_at < m),
        (updated_after, lambda m: Contact.updated_at >= m),
        (updated_before, lambda m: Contact.updated_at < m),
    ):
        if bound is not None:
            query = query.where(condition(bound))
    keys = parse_sort(sort, SORTABLE, "-created_at", Contact.id)
    async with db.session() as session:
        if q:
            query = query.where(
                await search.contact_condition(
                    session, q, sqlite=db.is_sqlite, phone_region=phone_region
                )
            )
        if raw_filter is not None:
            query = query.where(
                await filter_fields.contact_condition(
                    session, raw_filter, sqlite=db.is_sqlite, location="query"
                )
            )
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[ContactRead](items=[to_read(row[0]) for row in rows], next_cursor=next_cursor)


async def _apply_update(
    session: AsyncSession,
    principal: Principal,
    contact: Contact,
    data: ContactUpdate,
    *,
    phone_region: str,
    force: bool,
) -> list[ConsentChanged]:
    """Set the fields sent; returns the consent changes to announce."""
    sent = data.model_fields_set
    for name in _PLAIN:
        if name in sent:
            setattr(contact, name, getattr(data, name))
    if "tags" in sent and data.tags is not None:
        contact.tags = sorted(set(data.tags))
    if "custom" in sent and data.custom is not None:
        contact.custom = await validate_custom(session, "contact", data.custom)
    if "email" in sent:
        contact.email = data.email.lower() if data.email else None
    if "phone" in sent:
        contact.phone = to_e164(data.phone, phone_region) if data.phone else None
    if "company_id" in sent:
        if data.company_id is not None:
            await ensure_usable_company(session, principal, str(data.company_id))
        contact.company_id = str(data.company_id) if data.company_id else None
    if not force and ({"email", "phone"} & sent):
        await _ensure_no_duplicate(
            session,
            email=contact.email if "email" in sent else None,
            phone=contact.phone if "phone" in sent else None,
            exclude_id=contact.id,
        )
    changes: list[ConsentChanged] = []
    if data.consent is not None:
        for channel in ("email", "sms"):
            granted = getattr(data.consent, channel)
            attribute = f"consent_{channel}"
            if granted is None or granted == getattr(contact, attribute):
                continue
            setattr(contact, attribute, granted)
            changes.append(
                _record_consent(
                    session,
                    contact,
                    channel=channel,
                    granted=granted,
                    source=data.consent.source,
                    actor=principal.user_id,
                )
            )
    return changes


async def update_contact(
    *,
    db: Database,
    principal: Principal,
    contact_id: str,
    data: ContactUpdate,
    expected_version: int | None,
    phone_region: str,
    force: bool,
) -> ContactRead:
    """Change a contact's fields; 412 if the version the caller read is stale."""
    try:
        async with db.transaction() as session:
            contact = await load(session, principal, contact_id)
            access.ensure_may_write(principal, contact.owner_id)
            check_version(contact.version, expected_version, data.version)
            before = to_read(contact)
            consent_changes = await _apply_update(
                session, principal, contact, data, phone_region=phone_region, force=force
            )
            # Always touched, so every accepted PATCH bumps the version.
            contact.updated_at = utcnow()
            await session.flush()
            read = to_read(contact)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
            await publish_state(session, ContactUpdated, read, actor=principal.user_id)
            for event in consent_changes:
                await add_event(session, event, subject=contact.id, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("contact") from exc
    return read


async def delete_contact(
    *, db: Database, principal: Principal, contact_id: str, expected_version: int | None
) -> None:
    """Move a contact to the trash (restorable by admins and heads of sales)."""
    try:
        async with db.transaction() as session:
            contact = await load(session, principal, contact_id)
            access.ensure_may_write(principal, contact.owner_id)
            check_version(contact.version, expected_version)
            before = to_read(contact)
            contact.deleted_at = contact.updated_at = utcnow()
            await session.flush()
            read = to_read(contact)
            audit_change(session, principal, RECORD_TYPE, "delete", before, read)
            await publish_state(session, ContactDeleted, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("contact") from exc


async def restore_contact(
    *, db: Database, principal: Principal, contact_id: str, expected_version: int | None
) -> ContactRead:
    """Bring a contact back from the trash (admins and heads of sales over their teams)."""
    access.ensure_trash_role(principal)
    try:
        async with db.transaction() as session:
            contact = await load(session, principal, contact_id, in_trash=True)
            check_version(contact.version, expected_version)
            before = to_read(contact)
            contact.deleted_at = None
            contact.updated_at = utcnow()
            await session.flush()
            read = to_read(contact)
            audit_change(session, principal, RECORD_TYPE, "restore", before, read)
            await publish_state(session, ContactRestored, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("contact") from exc
    return read


async def _reassign(
    session: AsyncSession, principal: Principal, contact: Contact, owner_id: str
) -> ContactRead:
    """Give one loaded contact a new owner, with its audit row and event."""
    before = to_read(contact)
    if contact.owner_id == owner_id:
        return before  # nothing changes, nothing to announce
    contact.owner_id = owner_id
    contact.updated_at = utcnow()
    await session.flush()
    read = to_read(contact)
    audit_change(session, principal, RECORD_TYPE, "reassign", before, read)
    await publish_state(
        session,
        ContactOwnerChanged,
        read,
        actor=principal.user_id,
        previous_owner_id=str(before.owner_id),
    )
    return read


async def reassign_contact(
    *,
    db: Database,
    principal: Principal,
    contact_id: str,
    owner_id: str,
    expected_version: int | None,
) -> ContactRead:
    """Give a contact a new owner: admins anyone, a head of sales within their teams."""
    access.ensure_may_reassign(principal)
    try:
        async with db.transaction() as session:
            contact = await load(session, principal, contact_id)
            check_version(contact.version, expected_version)
            if not await access.may_assign(session, principal, owner_id):
                raise access.owner_not_assignable()
            read = await _reassign(session, principal, contact, owner_id)
    except StaleDataError as exc:
        raise stale("contact") from exc
    return read


async def reassign_contacts(
    *, db: Database, principal: Principal, contact_ids: Sequence[str], owner_id: str
) -> BulkReassigned:
    """Give many contacts a new owner at once: all of them or, if any is not visible, none."""
    access.ensure_may_reassign(principal)
    wanted = list(dict.fromkeys(contact_ids))
    try:
        async with db.transaction() as session:
            if not await access.may_assign(session, principal, owner_id):
                raise access.owner_not_assignable()
            found = {
                c.id: c
                for c in (
                    await session.scalars(
                        select(Contact).where(
                            Contact.id.in_(wanted),
                            Contact.deleted_at.is_(None),
                            owner_filter(principal, Contact.owner_id),
                        )
                    )
                ).all()
            }
            missing = [i for i in wanted if i not in found]
            if missing:
                raise NotFound(
                    f"No contact(s) {', '.join(missing)}; nothing was reassigned.",
                    errors=[
                        {"field": "ids", "location": "body", "message": f"no contact {i}"}
                        for i in missing
                    ],
                )
            for contact_id in wanted:
                await _reassign(session, principal, found[contact_id], owner_id)
    except StaleDataError as exc:
        raise stale("contact") from exc
    return BulkReassigned.model_validate(
        {"owner_id": owner_id, "ids": wanted, "count": len(wanted)}
    )


async def consent_history(
    *, db: Database, principal: Principal, contact_id: str
) -> list[ConsentEntryRead]:
    """Every consent change of a visible contact, oldest first."""
    async with db.session() as session:
        await load(session, principal, contact_id)
        entries = await session.scalars(
            select(ConsentEntry)
            .where(ConsentEntry.contact_id == contact_id)
            .order_by(ConsentEntry.at, ConsentEntry.id)
        )
        return [ConsentEntryRead.model_validate(e) for e in entries]


async def withdraw_consent_from_event(
    session: AsyncSession, *, contact_id: str, channel: str, source: str, actor: str | None
) -> None:
    """A recipient unsubscribed elsewhere: the channel's consent goes (ledger, events), once.

    A merged contact's withdrawal applies to its survivor; an unknown or erased
    contact, an unknown channel, or consent already withdrawn changes nothing.
    """
    contact = await session.get(Contact, contact_id)
    if contact is not None and contact.merged_into:
        contact = await session.get(Contact, contact.merged_into)
    attribute = f"consent_{channel}"
    if contact is None or contact.erased_at or channel not in ("email", "sms"):
        return
    if not getattr(contact, attribute):
        return
    before = to_read(contact)
    setattr(contact, attribute, False)
    contact.updated_at = utcnow()
    event = _record_consent(
        session, contact, channel=channel, granted=False, source=source, actor=actor
    )
    await session.flush()
    read = to_read(contact)
    audit.record(
        session,
        actor_id=actor,
        action="update",
        record_type=RECORD_TYPE,
        record_id=contact.id,
        before=before,
        after=read,
    )
    await publish_state(session, ContactUpdated, read, actor=actor)
    await add_event(session, event, subject=contact.id, actor=actor)
