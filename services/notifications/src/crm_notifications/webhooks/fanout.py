"""Matching events become persisted deliveries, one per subscription (the bus is never held).

Two sources: every domain event on the CRM_* event streams (a durable consumer
of its own, `notifications-webhooks`), and the `crm.notifications.send.webhook`
command. A subscription receives events published after it was created; the
unique (subscription, event id) pair makes a redelivered event one delivery.

Most events (every delivery event of a bulk campaign, say) match no
subscription: the event consumer skips them before any per-event work (span,
schema, inbox row).
"""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, cast

import orjson
from sqlalchemy import Table, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.consumer import BatchContext, EventContext, Handlers
from crm_kernel.contracts import all_types
from crm_kernel.contracts.notifications import SendWebhook
from crm_kernel.db import insert_ignoring_duplicates
from crm_kernel.events import Envelope, IntegrationEvent
from crm_kernel.ids import new_id
from crm_notifications.models import WebhookDelivery, WebhookSubscription

DELIVERIES = cast(Table, WebhookDelivery.__table__)
CONSUMER_NAME = "notifications-webhooks"
# Fields never sent to integrations: an erasure names the addresses only so that
# messaging services can suppress them; a subscriber needs the contact id alone.
REDACTED: dict[str, tuple[str, ...]] = {"crm.contacts.contact.erased": ("email", "phone")}


def matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatchcase(event_type, pattern) for pattern in patterns)


async def active_subscriptions(session: AsyncSession) -> list[WebhookSubscription]:
    query = select(WebhookSubscription).where(
        WebhookSubscription.is_active == true(), WebhookSubscription.deleted_at.is_(None)
    )
    return list((await session.execute(query)).scalars())


def _delivery(subscription_id: str, event_id: str, event_type: str, body: bytes) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": str(new_id()),
        "subscription_id": subscription_id,
        "event_id": event_id,
        "event_type": event_type,
        "body": body.decode(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
    }


def _body(envelope: Envelope) -> bytes:
    hidden = REDACTED.get(envelope.type)
    if hidden:
        data = {k: v for k, v in envelope.data.items() if k not in hidden}
        envelope = envelope.model_copy(update={"data": data})
    return envelope.to_bytes()


def _wants(subscription: WebhookSubscription, envelope: Envelope) -> bool:
    return subscription.created_at <= envelope.time and matches(
        subscription.event_types, envelope.type
    )


async def wanted(session: AsyncSession, envelopes: list[Envelope]) -> list[Envelope]:
    """The events some active subscription wants."""
    subscriptions = await active_subscriptions(session)
    return [e for e in envelopes if any(_wants(s, e) for s in subscriptions)]


async def fan_out(session: AsyncSession, envelopes: list[Envelope]) -> None:
    subscriptions = await active_subscriptions(session)
    rows = [
        _delivery(s.id, e.id, e.type, _body(e))
        for e in envelopes
        for s in subscriptions
        if _wants(s, e)
    ]
    await insert_ignoring_duplicates(session, DELIVERIES, rows)


def event_handlers() -> Handlers:
    """Handlers of every domain event type (not commands), for the webhook consumer."""
    handlers = Handlers(CONSUMER_NAME, select=wanted)

    async def on_events(_: list[IntegrationEvent], ctx: BatchContext) -> None:
        await fan_out(ctx.session, ctx.envelopes)

    for schema in all_types().values():
        if not schema.is_command:
            handlers.on_batch(schema)(on_events)
    return handlers


def register_command(handlers: Handlers) -> None:
    @handlers.on(SendWebhook)
    async def on_send_webhook(command: SendWebhook, ctx: EventContext) -> None:
        body = orjson.dumps(
            {
                "specversion": "1.0",
                "id": command.key,
                "type": command.event_type,
                "source": ctx.envelope.source,
                "time": ctx.envelope.time.isoformat(),
                "data": command.payload,
            }
        )
        subscriptions = await active_subscriptions(ctx.session)
        rows = [
            _delivery(s.id, command.key, command.event_type, body)
            for s in subscriptions
            if matches(s.event_types, command.event_type)
        ]
        await insert_ignoring_duplicates(ctx.session, DELIVERIES, rows)
