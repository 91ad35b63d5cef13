"""The security_events table: offboarding and two-factor changes, for the merged audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_gateway.orm import Base, new_uuid, utcnow
from crm_kernel.db import UtcDateTime


class SecurityEvent(Base):
    """One security-relevant change made through the gateway (logins live in login_events)."""

    __tablename__ = "security_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(36))
    # user.offboarded, user.2fa_enabled, user.2fa_disabled
    action: Mapped[str] = mapped_column(String(60))
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
