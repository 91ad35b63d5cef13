"""In-app notice use cases: store (one per user, idempotent by key), list own, mark read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.contracts.notifications import InAppNoticeCreated
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import NotFound
from crm_kernel.tables import directory_users as users
from crm_notifications.models import InAppNotice
from crm_notifications.notices.schemas import NoticeRead, ReadAllResult


@dataclass(frozen=True)
class Notice:
    """What to tell: to one user, or to every active user of a role."""

    key: str
    title: str
    body: str = ""
    link: str | None = None
    category: str = "system"
    source_type: str | None = None
    source_id: str | None = None
    user_id: str | None = None
    role: str | None = None


async def recipients(session: AsyncSession, notice: Notice) -> list[str]:
    """The user, or the active users of the role as the kernel's directory knows them."""
    found: set[str] = {notice.user_id} if notice.user_id else set()
    if notice.role:
        query = select(users.c.id).where(users.c.role == notice.role, users.c.is_active == true())
        found.update((await session.execute(query)).scalars())
    return sorted(found)


async def store(session: AsyncSession, notice: Notice) -> int:
    """Store the notice for each recipient not holding it yet, each with its live event."""
    targets = await recipients(session, notice)
    if not targets:
        return 0
    held = set(
        (
            await session.execute(
                select(InAppNotice.user_id).where(
                    InAppNotice.key == notice.key, InAppNotice.user_id.in_(targets)
                )
            )
        ).scalars()
    )
    now = datetime.now(UTC)
    stored = 0
    for user_id in targets:
        if user_id in held:
            continue
        row = InAppNotice(
            id=str(new_id()),
            key=notice.key,
            user_id=user_id,
            title=notice.title[:300],
            body=notice.body,
            link=notice.link,
            category=notice.category,
            source_type=notice.source_type,
            source_id=notice.source_id,
            created_at=now,
            read_at=None,
        )
        session.add(row)
        event = InAppNoticeCreated(
            id=row.id,
            user_id=user_id,
            title=row.title,
            body=row.body,
            link=row.link,
            category=row.category,
            created_at=now.isoformat(),
        )
        await add_event(session, event, subject=user_id)
        stored += 1
    return stored


async def list_notices(
    *, db: Database, user_id: str, unread: bool, limit: int, cursor: str | None
) -> Page[NoticeRead]:
    query = select(InAppNotice).where(InAppNotice.user_id == user_id)
    if unread:
        query = query.where(InAppNotice.read_at.is_(None))
    keys = parse_sort(None, {"created_at": InAppNotice.created_at}, "-created_at", InAppNotice.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[NoticeRead](
        items=[NoticeRead.model_validate(r[0]) for r in rows], next_cursor=next_cursor
    )


async def mark_read(*, db: Database, user_id: str, notice_id: str) -> NoticeRead:
    """Mark one of the caller's notices read (another user's notice does not exist for them)."""
    async with db.transaction() as session:
        row = await session.get(InAppNotice, notice_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"No notice {notice_id}.")
        if row.read_at is None:
            row.read_at = datetime.now(UTC)
        return NoticeRead.model_validate(row)


async def mark_all_read(*, db: Database, user_id: str) -> ReadAllResult:
    async with db.transaction() as session:
        result = await session.execute(
            update(InAppNotice)
            .where(InAppNotice.user_id == user_id, InAppNotice.read_at.is_(None))
            .values(read_at=datetime.now(UTC))
        )
    return ReadAllResult(marked_read=int(result.rowcount))  # type: ignore[attr-defined]
