"""Send commands from the bus become queued notifications (idempotent by key)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts.notifications import (
    BulkEmail,
    SendBulkEmail,
    SendBulkEmails,
    SendBulkSms,
    SendEmail,
    SendSms,
)
from crm_kernel.db import insert_ignoring_duplicates
from crm_kernel.ids import new_id
from crm_notifications.models import Notification
from crm_notifications.notices import handlers as notices
from crm_notifications.notifications import consent, erasure
from crm_notifications.sms import normalise_phone, segment
from crm_notifications.webhooks import fanout

NOTIFICATIONS = cast(Table, Notification.__table__)


def email_row(command: SendEmail, *, category: str | None = None) -> dict[str, Any]:
    return _email_row(command, category or command.category, command.source_type, command.source_id)


def bulk_email_rows(command: SendBulkEmails) -> list[dict[str, Any]]:
    """A row per e-mail of a campaign's batch; each keeps its own key."""
    return [
        _email_row(email, "bulk", command.source_type, command.source_id)
        for email in command.emails
    ]


def _email_row(
    email: SendEmail | BulkEmail, category: str, source_type: str | None, source_id: str | None
) -> dict[str, Any]:
    return _row(
        key=email.key,
        channel="email",
        category=category,
        recipient=email.to.strip(),
        subject=email.subject,
        body_text=email.body_text,
        body_html=email.body_html,
        unsubscribe_url=email.unsubscribe_url,
        source_type=source_type,
        source_id=source_id,
        contact_id=email.contact_id,
    )


def sms_row(
    command: SendSms, price_per_segment: Decimal, *, category: str | None = None
) -> dict[str, Any]:
    parts = segment(command.text).segments
    return _row(
        key=command.key,
        channel="sms",
        category=category or command.category,
        recipient=normalise_phone(command.to),
        body_text=command.text,
        source_type=command.source_type,
        source_id=command.source_id,
        contact_id=command.contact_id,
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
        "contact_id": None,
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
    erasure.register(handlers)
    notices.register(handlers)
    fanout.register_command(handlers)

    @handlers.on_batch(SendEmail)
    async def on_send_email(commands: list[SendEmail], ctx: BatchContext) -> None:
        await enqueue(ctx.session, [email_row(c) for c in commands])

    @handlers.on_batch(SendBulkEmail)
    async def on_send_bulk_email(commands: list[SendBulkEmail], ctx: BatchContext) -> None:
        # Campaign traffic is "bulk" whatever it says: that picks its pool and consent rule.
        await enqueue(ctx.session, [email_row(c, category="bulk") for c in commands])

    @handlers.on_batch(SendBulkEmails)
    async def on_send_bulk_emails(commands: list[SendBulkEmails], ctx: BatchContext) -> None:
        # One command carries many recipients (one stream write for the lot).
        await enqueue(ctx.session, [row for c in commands for row in bulk_email_rows(c)])

    @handlers.on_batch(SendSms)
    async def on_send_sms(commands: list[SendSms], ctx: BatchContext) -> None:
        await enqueue(ctx.session, [sms_row(c, price_per_segment) for c in commands])

    @handlers.on_batch(SendBulkSms)
    async def on_send_bulk_sms(commands: list[SendBulkSms], ctx: BatchContext) -> None:
        rows = [sms_row(c, price_per_segment, category="bulk") for c in commands]
        await enqueue(ctx.session, rows)

    return handlers
