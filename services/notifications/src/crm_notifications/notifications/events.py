"""Delivery status events built from a notification row."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from crm_kernel.contracts.notifications import DeliveryChanged


class NotificationFacts(Protocol):
    """A notification row, or the few columns of it an event needs."""

    @property
    def id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def source_type(self) -> str | None: ...
    @property
    def source_id(self) -> str | None: ...
    @property
    def contact_id(self) -> str | None: ...


def delivery_event(
    schema: type[DeliveryChanged],
    row: NotificationFacts,
    *,
    at: datetime,
    error: str | None = None,
    **extra: Any,
) -> DeliveryChanged:
    """The event of `schema` for where `row` stands now, with its source and contact."""
    return schema(**_facts(row, at, error), **extra)


def delivery(row: NotificationFacts, *, at: datetime, error: str | None = None) -> DeliveryChanged:
    """Where `row` stands now, as one delivery of a `DeliveriesChanged` batch."""
    return DeliveryChanged(**_facts(row, at, error))


def _facts(row: NotificationFacts, at: datetime, error: str | None) -> dict[str, Any]:
    return {
        "notification_id": row.id,
        "key": row.key,
        "channel": row.channel,
        "recipient": row.recipient,
        "status": row.status,
        "attempts": row.attempts,
        "source_type": row.source_type,
        "source_id": row.source_id,
        "contact_id": row.contact_id,
        "error": error,
        "at": at.isoformat(),
    }
