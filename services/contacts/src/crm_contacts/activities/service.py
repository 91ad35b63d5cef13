"""Activity use cases and the timeline: visibility and write rights follow the contact."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts import access
from crm_contacts.activities.models import Activity
from crm_contacts.activities.schemas import (
    ActivityCreate,
    ActivityRead,
    ActivityType,
    ActivityUpdate,
)
from crm_contacts.audit.service import audit_change
from crm_contacts.common import stale, utcnow
from crm_contacts.contacts.models import Contact
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.contacts import (
    ActivityCreated,
    ActivityDeleted,
    ActivityState,
    ActivityUpdated,
)
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import NotFound, Unprocessable
from crm_kernel.versioning import check_version

RECORD_TYPE = "activity"
SORTABLE = {"occurred_at": Activity.occurred_at, "created_at": Activity.created_at}


def to_read(activity: Activity) -> ActivityRead:
    return ActivityRead.model_validate(activity)


def _visible(principal: Principal) -> Select[Any]:
    """Live activities of live contacts the caller sees; no private notes for marketers."""
    query = (
        select(Activity)
        .join(Contact, Contact.id == Activity.contact_id)
        .where(
            Activity.deleted_at.is_(None),
            Contact.deleted_at.is_(None),
            owner_filter(principal, Contact.owner_id),
        )
    )
    if principal.role is Role.MARKETER:
        query = query.where(Activity.private.is_(False))
    return query


async def _publish(
    session: AsyncSession,
    kind: type[ActivityState],
    read: ActivityRead,
    *,
    actor: str,
    **extra: Any,
) -> None:
    state = read.model_dump(mode="json")
    state["activity_type"] = state.pop("type")
    event = kind.model_validate({**state, **extra})
    await add_event(session, event, subject=str(read.id), actor=actor)


def _ensure_private_is_a_note(activity_type: str, private: bool) -> None:
    if private and activity_type != ActivityType.NOTE:
        raise Unprocessable(
            "Only notes may be private.",
            errors=[{"field": "private", "location": "body", "message": "only notes are private"}],
        )


async def _contact_for_writing(
    session: AsyncSession, principal: Principal, contact_id: str
) -> Contact:
    """The live, visible contact an activity is written on; 422 naming `contact_id` otherwise."""
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


async def _load(session: AsyncSession, principal: Principal, activity_id: str) -> Activity:
    activity: Activity | None = (
        await session.execute(_visible(principal).where(Activity.id == activity_id))
    ).scalar_one_or_none()
    if activity is None:
        raise NotFound(f"No activity {activity_id}.")
    return activity


async def _owner_of_contact(session: AsyncSession, contact_id: str) -> str:
    owner = await session.scalar(select(Contact.owner_id).where(Contact.id == contact_id))
    if owner is None:  # an activity is only loaded through its live contact
        raise NotFound(f"No contact {contact_id}.")
    return owner


async def create_activity(
    *, db: Database, principal: Principal, data: ActivityCreate
) -> ActivityRead:
    """Record a call, meeting, e-mail, note or SMS on a contact the caller may change."""
    _ensure_private_is_a_note(data.type, data.private)
    now = utcnow()
    async with db.transaction() as session:
        contact = await _contact_for_writing(session, principal, str(data.contact_id))
        activity = Activity(
            id=str(new_id()),
            contact_id=contact.id,
            deal_id=str(data.deal_id) if data.deal_id else None,
            type=data.type,
            occurred_at=data.occurred_at or now,
            summary=data.summary,
            author_id=principal.user_id,
            private=data.private,
            created_at=now,
            updated_at=now,
        )
        session.add(activity)
        await session.flush()
        read = to_read(activity)
        audit_change(session, principal, RECORD_TYPE, "create", None, read)
        await _publish(session, ActivityCreated, read, actor=principal.user_id)
    return read


async def get_activity(*, db: Database, principal: Principal, activity_id: str) -> ActivityRead:
    """One activity, or 404 when the caller may not see it (or its contact)."""
    async with db.session() as session:
        return to_read(await _load(session, principal, activity_id))


async def list_activities(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    contact_id: str | None = None,
    deal_id: str | None = None,
    activity_type: str | None = None,
    author_id: str | None = None,
) -> Page[ActivityRead]:
    """The activities the caller may see, newest first unless sorted otherwise."""
    query = _visible(principal)
    if contact_id:
        query = query.where(Activity.contact_id == contact_id)
    if deal_id:
        query = query.where(Activity.deal_id == deal_id)
    if activity_type:
        query = query.where(Activity.type == activity_type)
    if author_id:
        query = query.where(Activity.author_id == author_id)
    keys = parse_sort(sort, SORTABLE, "-occurred_at", Activity.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[ActivityRead](items=[to_read(row[0]) for row in rows], next_cursor=next_cursor)


async def update_activity(
    *,
    db: Database,
    principal: Principal,
    activity_id: str,
    data: ActivityUpdate,
    expected_version: int | None,
) -> ActivityRead:
    """Change an activity on a contact the caller may change; 412 if the version is stale."""
    sent = data.model_fields_set
    try:
        async with db.transaction() as session:
            activity = await _load(session, principal, activity_id)
            access.ensure_may_write(
                principal, await _owner_of_contact(session, activity.contact_id)
            )
            check_version(activity.version, expected_version, data.version)
            before = to_read(activity)
            for name in ("type", "occurred_at", "summary", "private"):
                if name in sent:
                    setattr(activity, name, getattr(data, name))
            if "deal_id" in sent:
                activity.deal_id = str(data.deal_id) if data.deal_id else None
            _ensure_private_is_a_note(activity.type, activity.private)
            activity.updated_at = utcnow()
            await session.flush()
            read = to_read(activity)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
            await _publish(session, ActivityUpdated, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("activity") from exc
    return read


async def delete_activity(
    *, db: Database, principal: Principal, activity_id: str, expected_version: int | None
) -> None:
    """Remove an activity from the timeline (soft: the row and its audit trail stay)."""
    try:
        async with db.transaction() as session:
            activity = await _load(session, principal, activity_id)
            access.ensure_may_write(
                principal, await _owner_of_contact(session, activity.contact_id)
            )
            check_version(activity.version, expected_version)
            before = to_read(activity)
            activity.deleted_at = activity.updated_at = utcnow()
            await session.flush()
            read = to_read(activity)
            audit_change(session, principal, RECORD_TYPE, "delete", before, read)
            await _publish(
                session,
                ActivityDeleted,
                read,
                actor=principal.user_id,
                deleted_at=activity.deleted_at.isoformat(),
            )
    except StaleDataError as exc:
        raise stale("activity") from exc
