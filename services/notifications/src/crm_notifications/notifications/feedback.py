"""What providers tell us after sending: delivered, failed on the way, bounced, complained.

Each report is applied once (a repeated callback finds the state already
reached), recorded as an attempt row, and published as a delivery event in
the same transaction. A permanent bounce or a complaint suppresses the address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.contracts.notifications import (
    DeliveryBounced,
    DeliveryChanged,
    DeliveryDelivered,
    DeliveryFailed,
)
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_notifications.models import Attempt, Notification, Suppression
from crm_notifications.notifications.events import delivery_event

# The states a report may move a notification out of: it was handed to the provider.
_AFTER_SEND = {"sent", "delivered"}


@dataclass(frozen=True)
class Report:
    outcome: str  # "delivered", "failed", "bounced"
    error: str | None = None
    permanent: bool = True
    complaint: bool = False
    # Put the address on the suppression list (permanent bounce, complaint, dead number).
    suppress: bool = False


async def find(
    session: AsyncSession, *, notification_id: str | None = None, provider_id: str | None = None
) -> Notification | None:
    if notification_id:
        return await session.get(Notification, notification_id)
    if provider_id:
        query = select(Notification).where(Notification.provider_id == provider_id).limit(1)
        return (await session.execute(query)).scalar_one_or_none()
    return None


async def apply_report(
    db: Database,
    report: Report,
    *,
    notification_id: str | None = None,
    provider_id: str | None = None,
) -> bool:
    """Apply a provider's report to the notification it names; False when none matches."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        row = await find(session, notification_id=notification_id, provider_id=provider_id)
        if row is None:
            return False
        await _apply(session, row, report, now)
    return True


async def _apply(session: AsyncSession, row: Notification, report: Report, now: datetime) -> None:
    schema: type[DeliveryChanged]
    extra: dict[str, bool] = {}
    if report.outcome == "delivered":
        if row.status != "sent":
            return  # already delivered, or a late report after a failure: nothing changes
        schema = DeliveryDelivered
    elif report.outcome == "failed":
        if row.status not in _AFTER_SEND:
            return
        schema = DeliveryFailed
    else:
        if row.status not in _AFTER_SEND:
            return
        schema = DeliveryBounced
        extra = {"permanent": report.permanent, "complaint": report.complaint}
    row.status, row.updated_at = report.outcome, now
    if report.error:
        row.last_error = report.error
    session.add(
        Attempt(
            id=str(new_id()),
            notification_id=row.id,
            at=now,
            outcome=report.outcome,
            detail=report.error,
        )
    )
    if report.suppress:
        address = row.recipient.lower() if row.channel == "email" else row.recipient
        reason = "complaint" if report.complaint else "hard_bounce"
        await session.merge(
            Suppression(channel=row.channel, address=address, reason=reason, created_at=now)
        )
    event = delivery_event(schema, row, at=now, error=report.error, **extra)
    await add_event(session, event, subject=row.id)
