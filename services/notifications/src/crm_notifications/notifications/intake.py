"""Send commands from the bus become queued notifications (idempotent by key)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts.notifications import SendBulkEmail, SendEmail, SendSms
from crm_kernel.db import insert_ignoring_duplicates
from crm_kernel.ids import new_id
from crm_notifications.models import Notification
from crm_notifications.notifications import consent
from crm_notifications.sms import segment

NOTIFICATIONS = cast(Table, Notification.__table__)


def email_row(command: SendEmail) -> dict[str, Any]:
    return _row(
        key=command.key,
        channel="email",
        category=command.category,
        recipient=command.to.strip(),
        subject=command.subject,
        body_text=command.body_text,
        body_html=command.body_html,
        unsubscribe_url=command.unsubscribe_url,
        source_type=command.source_type,
        source_id=command.source_id,
    )


def sms_row(command: SendSms, price_per_segment: Decimal) -> dict[str, Any]:
    parts = segment(command.text).segments
    return _row(
        key=command.key,
        channel="sms",
        category=command.category,
        recipient=command.to.strip(),
        body_text=command.text,
        source_type=command.source_type,
        source_id=command.source_id,
        segments=parts,
        cost_estimate=price_per_segment * parts,
    )


def _row(**values: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": str(new_id()),
        "subject": None,
        "body_html": None,
        "unsubscribe_url": None,
        "segments": None,
        "cost_estimate": None,
        "status": "queued",
        "attempts": 0,
        "uncertain_attempts": 0,
        "last_error": None,
        "provider_id": None,
        "next_attempt_at": now,
        "lease_until": None,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
        **values,
    }


async def enqueue(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Queue notifications; a key already known is the same notification (no second send)."""
    await insert_ignoring_duplicates(session, NOTIFICATIONS, rows)


def build_handlers(price_per_segment: Decimal) -> Handlers:
    handlers = Handlers("notifications")
    consent.register(handlers)

    @handlers.on_batch(SendEmail)
    async def on_send_email(commands: list[SendEmail], ctx: BatchContext) -> None:
        await enqueue(ctx.session, [email_row(c) for c in commands])

    @handlers.on_batch(SendBulkEmail)
    async def on_send_bulk_email(commands: list[SendBulkEmail], ctx: BatchContext) -> None:
        await enqueue(ctx.session, [email_row(c) for c in commands])

    @handlers.on_batch(SendSms)
    async def on_send_sms(commands: list[SendSms], ctx: BatchContext) -> None:
        await enqueue(ctx.session, [sms_row(c, price_per_segment) for c in commands])

    return handlers
