"""Webhook use cases: manage subscriptions, read the delivery log, replay a delivery."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, Unprocessable
from crm_notifications.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from crm_notifications.webhooks.schemas import (
    DeliveryRead,
    WebhookAttemptRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from crm_notifications.webhooks.signature import new_secret
from crm_notifications.webhooks.targets import TargetRefused, check_target


async def _checked_url(url: str, allow_private: bool) -> str:
    try:
        await check_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise Unprocessable(
            f"The webhook URL is refused: {exc}.",
            errors=[{"field": "url", "location": "body", "message": str(exc)}],
        ) from exc
    return url


async def create_webhook(
    *, db: Database, data: WebhookCreate, actor_id: str, allow_private: bool
) -> WebhookCreated:
    url = await _checked_url(data.url, allow_private)
    now = datetime.now(UTC)
    row = WebhookSubscription(
        id=str(new_id()),
        url=url,
        event_types=sorted(set(data.event_types)),
        secret=data.secret or new_secret(),
        description=data.description,
        is_active=data.is_active,
        created_by=actor_id,
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )
    async with db.transaction() as session:
        session.add(row)
    return WebhookCreated.model_validate(row, from_attributes=True)


async def _live(session: AsyncSession, webhook_id: str) -> WebhookSubscription:
    row = await session.get(WebhookSubscription, webhook_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"No webhook {webhook_id}.")
    return row


async def get_webhook(*, db: Database, webhook_id: str) -> WebhookRead:
    async with db.session() as session:
        return WebhookRead.model_validate(await _live(session, webhook_id))


async def list_webhooks(*, db: Database, limit: int, cursor: str | None) -> Page[WebhookRead]:
    query = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))
    keys = parse_sort(
        None,
        {"created_at": WebhookSubscription.created_at},
        "-created_at",
        WebhookSubscription.id,
    )
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[WebhookRead](
        items=[WebhookRead.model_validate(r[0]) for r in rows], next_cursor=next_cursor
    )


async def update_webhook(
    *, db: Database, webhook_id: str, data: WebhookUpdate, allow_private: bool
) -> WebhookRead:
    url = await _checked_url(data.url, allow_private) if data.url else None
    async with db.transaction() as session:
        row = await _live(session, webhook_id)
        if url:
            row.url = url
        if data.event_types is not None:
            row.event_types = sorted(set(data.event_types))
        if "description" in data.model_fields_set:
            row.description = data.description
        if data.is_active is not None:
            row.is_active = data.is_active
        row.updated_at = datetime.now(UTC)
        return WebhookRead.model_validate(row)


async def delete_webhook(*, db: Database, webhook_id: str) -> None:
    """Soft delete: nothing more is delivered; pending deliveries fail at their next turn."""
    async with db.transaction() as session:
        row = await _live(session, webhook_id)
        row.deleted_at = row.updated_at = datetime.now(UTC)
        row.is_active = False


async def list_deliveries(
    *, db: Database, webhook_id: str, status: str | None, limit: int, cursor: str | None
) -> Page[DeliveryRead]:
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    keys = parse_sort(
        None, {"created_at": WebhookDelivery.created_at}, "-created_at", WebhookDelivery.id
    )
    async with db.session() as session:
        await _live(session, webhook_id)
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
        deliveries = [r[0] for r in rows]
        attempts = await _attempts(session, [d.id for d in deliveries])
    return Page[DeliveryRead](
        items=[_read(d, attempts.get(d.id, [])) for d in deliveries], next_cursor=next_cursor
    )


async def replay_delivery(*, db: Database, webhook_id: str, delivery_id: str) -> DeliveryRead:
    """Queue a delivery again, with a fresh retry budget; its earlier attempts stay in the log."""
    async with db.transaction() as session:
        await _live(session, webhook_id)
        row = await session.get(WebhookDelivery, delivery_id)
        if row is None or row.subscription_id != webhook_id:
            raise NotFound(f"No delivery {delivery_id}.")
        if row.status in ("pending", "sending"):
            raise Conflict("This delivery is still in progress.")
        row.status, row.attempts = "pending", 0
        row.next_attempt_at = datetime.now(UTC)
        attempts = await _attempts(session, [row.id])
        return _read(row, attempts.get(row.id, []))


async def _attempts(
    session: AsyncSession, delivery_ids: list[str]
) -> dict[str, list[WebhookAttempt]]:
    if not delivery_ids:
        return {}
    found: dict[str, list[WebhookAttempt]] = {}
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.at)
    )
    for attempt in (await session.execute(query)).scalars():
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


def _read(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        delivered_at=row.delivered_at,
        attempt_log=[WebhookAttemptRead.model_validate(a) for a in attempts],
    )
