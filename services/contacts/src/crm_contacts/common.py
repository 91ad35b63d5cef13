"""Small helpers shared by the concepts (versions and If-Match live in `crm_kernel.versioning`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.events import IntegrationEvent
from crm_kernel.outbox import add_event
from crm_kernel.problems import PreconditionFailed


def utcnow() -> datetime:
    return datetime.now(UTC)


def stale(kind: str) -> PreconditionFailed:
    """The 412 for an edit that lost a race with a concurrent one (caught at flush)."""
    return PreconditionFailed(f"The {kind} was changed by someone else meanwhile; reload it.")


async def publish_state(
    session: AsyncSession,
    kind: type[IntegrationEvent],
    read: BaseModel,
    *,
    actor: str | None,
    **extra: Any,
) -> None:
    """Publish a record's whole current state (`read`, as the API shows it) as event `kind`."""
    event = kind.model_validate({**read.model_dump(mode="json"), **extra})
    await add_event(session, event, subject=str(read.id), actor=actor)  # type: ignore[attr-defined]
