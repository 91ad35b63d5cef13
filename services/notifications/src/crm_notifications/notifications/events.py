"""Delivery status events built from a notification row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm_kernel.contracts.notifications import DeliveryChanged
from crm_notifications.models import Notification


def delivery_event(
    schema: type[DeliveryChanged],
    row: Notification,
    *,
    at: datetime,
    error: str | None = None,
    **extra: Any,
) -> DeliveryChanged:
    """The event of `schema` for where `row` stands now, with its source and contact."""
    return schema(
        notification_id=row.id,
        key=row.key,
        channel=row.channel,
        recipient=row.recipient,
        status=row.status,
        attempts=row.attempts,
        source_type=row.source_type,
        source_id=row.source_id,
        contact_id=row.contact_id,
        error=error,
        at=at.isoformat(),
        **extra,
    )
