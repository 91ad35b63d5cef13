"""Reading a contact's timeline: activities, client requests and system entries in one order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, cast, literal, null, select, union_all

from crm_contacts.activities.models import Activity
from crm_contacts.contacts.models import Contact
from crm_contacts.requests.models import ClientRequest
from crm_contacts.timeline.models import TimelineEntry
from crm_contacts.timeline.schemas import TimelineItem
from crm_kernel.auth import Principal, Role
from crm_kernel.db import Database, UtcDateTime
from crm_kernel.directory import owner_filter
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import NotFound


def _none(type_: Any) -> Any:
    # A typed NULL, so both dialects accept it in the UNION.
    return cast(null(), type_)


def _entries(principal: Principal, contact_id: str) -> Any:
    """The three kinds as one sub-query with the same columns (system entries first: their types)."""
    system = select(
        literal("system", String(10)).label("kind"),
        TimelineEntry.id,
        TimelineEntry.contact_id,
        TimelineEntry.deal_id,
        TimelineEntry.type,
        TimelineEntry.occurred_at,
        TimelineEntry.summary,
        _none(String(36)).label("author_id"),
        literal(False, Boolean).label("private"),
        _none(Integer).label("version"),
        TimelineEntry.created_at,
        _none(UtcDateTime()).label("updated_at"),
        TimelineEntry.data,
    ).where(TimelineEntry.contact_id == contact_id)
    activities = select(
        literal("activity", String(10)),
        Activity.id,
        Activity.contact_id,
        Activity.deal_id,
        Activity.type,
        Activity.occurred_at,
        Activity.summary,
        Activity.author_id,
        Activity.private,
        Activity.version,
        Activity.created_at,
        Activity.updated_at,
        _none(JSON),
    ).where(Activity.contact_id == contact_id, Activity.deleted_at.is_(None))
    if principal.role is Role.MARKETER:
        activities = activities.where(Activity.private.is_(False))
    requests = select(
        literal("request", String(10)),
        ClientRequest.id,
        ClientRequest.contact_id,
        _none(String(36)),
        ClientRequest.status,
        ClientRequest.opened_at,
        ClientRequest.subject,
        ClientRequest.assignee_id,
        literal(False, Boolean),
        ClientRequest.version,
        ClientRequest.created_at,
        ClientRequest.updated_at,
        _none(JSON),
    ).where(ClientRequest.contact_id == contact_id)
    return union_all(system, activities, requests).subquery("timeline")


async def timeline(
    *, db: Database, principal: Principal, contact_id: str, limit: int, cursor: str | None
) -> Page[TimelineItem]:
    """A visible contact's history, newest first; 404 if the caller may not see the contact."""
    entries = _entries(principal, contact_id)
    keys = parse_sort(None, {"occurred_at": entries.c.occurred_at}, "-occurred_at", entries.c.id)
    async with db.session() as session:
        visible = await session.scalar(
            select(Contact.id).where(
                Contact.id == contact_id,
                Contact.deleted_at.is_(None),
                owner_filter(principal, Contact.owner_id),
            )
        )
        if visible is None:
            raise NotFound(f"No contact {contact_id}.")
        rows, next_cursor = await paginate(
            session, select(entries), keys, limit=limit, cursor=cursor
        )
    return Page[TimelineItem](
        items=[TimelineItem.model_validate(dict(row._mapping)) for row in rows],
        next_cursor=next_cursor,
    )
