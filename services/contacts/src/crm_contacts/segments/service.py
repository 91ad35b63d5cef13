"""Segment use cases: definitions, static members, and members as the caller sees them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts import access
from crm_contacts.audit.service import audit_change
from crm_contacts.common import publish_state, stale, utcnow
from crm_contacts.contacts.models import Contact
from crm_contacts.contacts.schemas import ContactRead
from crm_contacts.contacts.service import SORTABLE as CONTACT_SORTABLE
from crm_contacts.contacts.service import to_read as contact_read
from crm_contacts.segments import fields
from crm_contacts.segments.models import Segment, SegmentMember
from crm_contacts.segments.schemas import (
    MEMBER_IDS_MAX,
    MembersChange,
    MembersChanged,
    Preview,
    SegmentCreate,
    SegmentKind,
    SegmentRead,
    SegmentSize,
    SegmentUpdate,
)
from crm_kernel.auth import Principal
from crm_kernel.contracts.contacts import (
    SegmentCreated,
    SegmentDeleted,
    SegmentMembersChanged,
    SegmentUpdated,
)
from crm_kernel.db import Database, insert_ignoring_duplicates
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import NotFound, Unprocessable
from crm_kernel.versioning import check_version

RECORD_TYPE = "segment"
SORTABLE = {"created_at": Segment.created_at, "name": Segment.name}


def to_read(segment: Segment) -> SegmentRead:
    return SegmentRead.model_validate(segment)


def visible_contacts(principal: Principal) -> Select[Any]:
    """Live contacts the caller may see: the base every member list starts from."""
    return select(Contact).where(
        Contact.deleted_at.is_(None), owner_filter(principal, Contact.owner_id)
    )


async def _load(session: AsyncSession, principal: Principal, segment_id: str) -> Segment:
    segment = (
        await session.execute(
            select(Segment).where(
                Segment.id == segment_id,
                Segment.deleted_at.is_(None),
                owner_filter(principal, Segment.owner_id),
            )
        )
    ).scalar_one_or_none()
    if segment is None:
        raise NotFound(f"No segment {segment_id}.")
    return segment


async def _membership(
    session: AsyncSession, segment: Segment, *, sqlite: bool
) -> ColumnElement[bool]:
    """Which contacts belong: the stored filter, or the static member list."""
    if segment.kind == SegmentKind.DYNAMIC:
        return await fields.contact_condition(session, segment.filter, sqlite=sqlite)
    listed = select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
    return Contact.id.in_(listed)


async def create_segment(*, db: Database, principal: Principal, data: SegmentCreate) -> SegmentRead:
    """A new segment owned by the caller; a dynamic one's filter is checked first (422)."""
    now = utcnow()
    async with db.transaction() as session:
        if data.filter is not None:
            await fields.contact_condition(session, data.filter, sqlite=db.is_sqlite)
        segment = Segment(
            id=str(new_id()),
            name=data.name,
            kind=data.kind.value,
            filter=data.filter,
            owner_id=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(segment)
        await session.flush()
        read = to_read(segment)
        audit_change(session, principal, RECORD_TYPE, "create", None, read)
        await publish_state(session, SegmentCreated, read, actor=principal.user_id)
    return read


async def get_segment(*, db: Database, principal: Principal, segment_id: str) -> SegmentRead:
    async with db.session() as session:
        return to_read(await _load(session, principal, segment_id))


async def list_segments(
    *, db: Database, principal: Principal, limit: int, cursor: str | None, sort: str | None
) -> Page[SegmentRead]:
    query = select(Segment).where(
        Segment.deleted_at.is_(None), owner_filter(principal, Segment.owner_id)
    )
    keys = parse_sort(sort, SORTABLE, "-created_at", Segment.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[SegmentRead](items=[to_read(r[0]) for r in rows], next_cursor=next_cursor)


async def update_segment(
    *,
    db: Database,
    principal: Principal,
    segment_id: str,
    data: SegmentUpdate,
    expected_version: int | None,
) -> SegmentRead:
    """Rename a segment or change a dynamic one's filter; 412 on a stale version."""
    try:
        async with db.transaction() as session:
            segment = await _load(session, principal, segment_id)
            access.ensure_may_write(principal, segment.owner_id)
            check_version(segment.version, expected_version, data.version)
            before = to_read(segment)
            if data.name is not None:
                segment.name = data.name
            if "filter" in data.model_fields_set:
                if segment.kind != SegmentKind.DYNAMIC or data.filter is None:
                    raise Unprocessable(
                        "Only a dynamic segment has a filter, and it may not be null.",
                        errors=[{"field": "filter", "location": "body", "message": "not here"}],
                    )
                await fields.contact_condition(session, data.filter, sqlite=db.is_sqlite)
                segment.filter = data.filter
            segment.updated_at = utcnow()
            await session.flush()
            read = to_read(segment)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
            await publish_state(session, SegmentUpdated, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("segment") from exc
    return read


async def delete_segment(
    *, db: Database, principal: Principal, segment_id: str, expected_version: int | None
) -> None:
    try:
        async with db.transaction() as session:
            segment = await _load(session, principal, segment_id)
            access.ensure_may_write(principal, segment.owner_id)
            check_version(segment.version, expected_version)
            before = to_read(segment)
            segment.deleted_at = segment.updated_at = utcnow()
            await session.flush()
            read = to_read(segment)
            audit_change(session, principal, RECORD_TYPE, "delete", before, read)
            await publish_state(session, SegmentDeleted, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("segment") from exc


async def _publish_members(
    session: AsyncSession,
    segment_id: str,
    actor: str,
    *,
    added: Sequence[str] = (),
    removed: Sequence[str] = (),
) -> None:
    """`members_changed` events of at most MEMBER_IDS_MAX ids each."""
    at = utcnow().isoformat()
    for start in range(0, len(added), MEMBER_IDS_MAX):
        event = SegmentMembersChanged(
            segment_id=segment_id, added=list(added[start : start + MEMBER_IDS_MAX]), at=at
        )
        await add_event(session, event, subject=segment_id, actor=actor)
    for start in range(0, len(removed), MEMBER_IDS_MAX):
        event = SegmentMembersChanged(
            segment_id=segment_id, removed=list(removed[start : start + MEMBER_IDS_MAX]), at=at
        )
        await add_event(session, event, subject=segment_id, actor=actor)


async def _static_for_writing(
    session: AsyncSession, principal: Principal, segment_id: str
) -> Segment:
    segment = await _load(session, principal, segment_id)
    access.ensure_may_write(principal, segment.owner_id)
    if segment.kind != SegmentKind.STATIC:
        raise Unprocessable(
            "Members of a dynamic segment follow its filter; change the filter instead.",
            errors=[{"field": "kind", "location": "path", "message": "not a static segment"}],
        )
    return segment


async def _chosen(
    session: AsyncSession, principal: Principal, data: MembersChange, *, sqlite: bool
) -> Select[Any]:
    """Ids of the visible live contacts the change names (by id or by filter)."""
    query = select(Contact.id).where(
        Contact.deleted_at.is_(None), owner_filter(principal, Contact.owner_id)
    )
    if data.ids is not None:
        return query.where(Contact.id.in_([str(i) for i in data.ids]))
    return query.where(await fields.contact_condition(session, data.filter, sqlite=sqlite))


async def add_members(
    *, db: Database, principal: Principal, segment_id: str, data: MembersChange
) -> MembersChanged:
    """Add contacts the caller sees to a static segment; 404 naming ids they do not see."""
    async with db.transaction() as session:
        segment = await _static_for_writing(session, principal, segment_id)
        chosen = set(
            await session.scalars(await _chosen(session, principal, data, sqlite=db.is_sqlite))
        )
        if data.ids is not None:
            missing = [str(i) for i in data.ids if str(i) not in chosen]
            if missing:
                raise NotFound(
                    f"No contact(s) {', '.join(missing)}; nothing was added.",
                    errors=[
                        {"field": "ids", "location": "body", "message": f"no contact {i}"}
                        for i in missing
                    ],
                )
        present = set(
            await session.scalars(
                select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
            )
        )
        new = sorted(chosen - present)
        now = utcnow()
        for start in range(0, len(new), MEMBER_IDS_MAX):
            await session.execute(
                insert(SegmentMember),
                [
                    {"segment_id": segment.id, "contact_id": c, "added_at": now}
                    for c in new[start : start + MEMBER_IDS_MAX]
                ],
            )
        await _publish_members(session, segment.id, principal.user_id, added=new)
    return MembersChanged(segment_id=segment.id, added=len(new))


async def remove_members(
    *, db: Database, principal: Principal, segment_id: str, data: MembersChange
) -> MembersChanged:
    """Remove members the caller sees (others stay: the caller cannot know of them)."""
    async with db.transaction() as session:
        segment = await _static_for_writing(session, principal, segment_id)
        chosen = (await _chosen(session, principal, data, sqlite=db.is_sqlite)).where(
            Contact.id.in_(
                select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
            )
        )
        gone = sorted(await session.scalars(chosen))
        for start in range(0, len(gone), MEMBER_IDS_MAX):
            await session.execute(
                delete(SegmentMember).where(
                    SegmentMember.segment_id == segment.id,
                    SegmentMember.contact_id.in_(gone[start : start + MEMBER_IDS_MAX]),
                )
            )
        await _publish_members(session, segment.id, principal.user_id, removed=gone)
    return MembersChanged(segment_id=segment.id, removed=len(gone))


async def move_memberships(
    session: AsyncSession, *, from_id: str, to_id: str | None, actor: str
) -> list[str]:
    """A merge: `to_id` takes `from_id`'s static memberships (once each; deleted segments too).
    An erasure (`to_id` None): `from_id`'s memberships just go.

    One `members_changed` per segment (`added` the survivor unless it was already a
    member, `removed` the merged or erased contact), so replicas converge whether this
    or `contact.merged` / `contact.erased` reaches them first. Returns the segment ids.
    """
    moving = list(
        await session.scalars(
            select(SegmentMember.segment_id)
            .where(SegmentMember.contact_id == from_id)
            .order_by(SegmentMember.segment_id)
        )
    )
    if not moving:
        return []
    now = utcnow()
    joining: set[str] = set()
    if to_id is not None:
        joining = set(moving) - set(
            await session.scalars(
                select(SegmentMember.segment_id).where(
                    SegmentMember.contact_id == to_id, SegmentMember.segment_id.in_(moving)
                )
            )
        )
        # Ignoring duplicates: a concurrent add of the survivor must not fail the merge.
        await insert_ignoring_duplicates(
            session,
            cast(Table, SegmentMember.__table__),
            [{"segment_id": s, "contact_id": to_id, "added_at": now} for s in moving],
        )
    await session.execute(delete(SegmentMember).where(SegmentMember.contact_id == from_id))
    for segment_id in moving:
        event = SegmentMembersChanged(
            segment_id=segment_id,
            added=[to_id] if to_id is not None and segment_id in joining else [],
            removed=[from_id],
            at=now.isoformat(),
        )
        await add_event(session, event, subject=segment_id, actor=actor)
    return moving


async def members(
    *,
    db: Database,
    principal: Principal,
    segment_id: str,
    limit: int,
    cursor: str | None,
    sort: str | None,
) -> Page[ContactRead]:
    """The segment's members the caller may see, a page at a time."""
    keys = parse_sort(sort, CONTACT_SORTABLE, "-created_at", Contact.id)
    async with db.session() as session:
        segment = await _load(session, principal, segment_id)
        query = visible_contacts(principal).where(
            await _membership(session, segment, sqlite=db.is_sqlite)
        )
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[ContactRead](items=[contact_read(r[0]) for r in rows], next_cursor=next_cursor)


async def size(*, db: Database, principal: Principal, segment_id: str) -> SegmentSize:
    """How many members the caller sees."""
    async with db.session() as session:
        segment = await _load(session, principal, segment_id)
        condition = await _membership(session, segment, sqlite=db.is_sqlite)
        count = await session.scalar(
            select(func.count()).select_from(
                visible_contacts(principal).where(condition).subquery()
            )
        )
    return SegmentSize(segment_id=segment.id, size=int(count or 0))


async def preview(
    *, db: Database, principal: Principal, raw_filter: dict[str, Any], limit: int
) -> Preview:
    """A filter tried before saving: the count and first contacts the caller sees."""
    keys = parse_sort(None, CONTACT_SORTABLE, "-created_at", Contact.id)
    async with db.session() as session:
        condition = await fields.contact_condition(session, raw_filter, sqlite=db.is_sqlite)
        query = visible_contacts(principal).where(condition)
        count = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows, _ = await paginate(session, query, keys, limit=limit, cursor=None)
    return Preview(size=int(count or 0), items=[contact_read(r[0]) for r in rows])
