"""Inbox: the event ids a consumer has applied, recorded in the same transaction as the effect."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.tables import inbox


async def processed_ids(session: AsyncSession, consumer: str, event_ids: Iterable[str]) -> set[str]:
    """Which of these events this consumer has already applied."""
    ids = list(event_ids)
    if not ids:
        return set()
    rows = await session.execute(
        select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id.in_(ids))
    )
    return set(rows.scalars())


async def record(session: AsyncSession, consumer: str, event_ids: Iterable[str]) -> None:
    """Mark events as applied; a second record of the same id fails the transaction."""
    now = datetime.now(UTC)
    rows = [
        {"consumer": consumer, "event_id": event_id, "processed_at": now} for event_id in event_ids
    ]
    if rows:
        await session.execute(insert(inbox), rows)


async def forget(session: AsyncSession, consumer: str) -> None:
    """Forget everything a consumer applied (before replaying its streams from the start)."""
    await session.execute(delete(inbox).where(inbox.c.consumer == consumer))


async def prune(session: AsyncSession, older_than: timedelta) -> None:
    """Drop entries older than any redelivery could be."""
    cutoff = datetime.now(UTC) - older_than
    await session.execute(delete(inbox).where(inbox.c.processed_at < cutoff))
