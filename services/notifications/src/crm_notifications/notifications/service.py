"""Notification use cases for the API."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from crm_kernel.contracts.notifications import SendEmail, SendSms
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import NotFound
from crm_notifications.models import Attempt, Notification
from crm_notifications.notifications.intake import email_row, enqueue, sms_row
from crm_notifications.notifications.schemas import (
    AttemptRead,
    Channel,
    NotificationCreate,
    NotificationDetail,
    NotificationRead,
)


async def create_notification(
    *, db: Database, data: NotificationCreate, key: str | None, price_per_segment: Decimal
) -> NotificationDetail:
    """Queue a transactional message; the same key again returns the first one."""
    key = key or data.key or str(new_id())
    if data.channel is Channel.EMAIL:
        row = email_row(
            SendEmail(
                key=key,
                to=data.to,
                subject=data.subject or "",
                body_text=data.body_text,
                body_html=data.body_html,
                source_type="api",
            )
        )
    else:
        row = sms_row(
            SendSms(key=key, to=data.to, text=data.body_text, source_type="api"), price_per_segment
        )
    async with db.transaction() as session:
        await enqueue(session, [row])
    async with db.session() as session:
        stored = (
            await session.execute(select(Notification).where(Notification.key == key))
        ).scalar_one()
    return await get_notification(db=db, notification_id=stored.id)


async def get_notification(*, db: Database, notification_id: str) -> NotificationDetail:
    async with db.session() as session:
        row = await session.get(Notification, notification_id)
        if row is None:
            raise NotFound(f"No notification {notification_id}.")
        attempts = (
            (
                await session.execute(
                    select(Attempt)
                    .where(Attempt.notification_id == notification_id)
                    .order_by(Attempt.at)
                )
            )
            .scalars()
            .all()
        )
    return NotificationDetail.model_validate(
        {
            **_read(row).model_dump(),
            "subject": row.subject,
            "attempt_log": [
                AttemptRead(at=a.at, outcome=a.outcome, detail=a.detail) for a in attempts
            ],
        }
    )


async def list_notifications(
    *,
    db: Database,
    limit: int,
    cursor: str | None,
    recipient: str | None,
    status: str | None,
    channel: str | None,
    source_type: str | None,
    contact_id: str | None = None,
) -> Page[NotificationRead]:
    query = select(Notification)
    for column, value in (
        (Notification.recipient, recipient),
        (Notification.status, status),
        (Notification.channel, channel),
        (Notification.source_type, source_type),
        (Notification.contact_id, contact_id),
    ):
        if value:
            query = query.where(column == value)
    keys = parse_sort(None, {"created_at": Notification.created_at}, "-created_at", Notification.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[NotificationRead](items=[_read(r[0]) for r in rows], next_cursor=next_cursor)


def _read(row: Notification) -> NotificationRead:
    return NotificationRead.model_validate(row, from_attributes=True)
