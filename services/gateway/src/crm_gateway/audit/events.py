"""Writing a security event inside the use case's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_gateway.audit.models import SecurityEvent
from crm_gateway.orm import utcnow


def record_security_event(
    session: AsyncSession,
    *,
    actor_id: str | None,
    action: str,
    record_id: str,
    record_type: str = "user",
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the caller's transaction (it commits with the change)."""
    session.add(
        SecurityEvent(
            occurred_at=utcnow(),
            actor_id=actor_id,
            action=action,
            record_type=record_type,
            record_id=record_id,
            detail=detail,
        )
    )
