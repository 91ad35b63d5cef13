"""The export table: a produced CSV kept for download until it expires."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class ContactExport(Base):
    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(36))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    row_count: Mapped[int] = mapped_column(Integer)
    # The CSV; None once it expired (the record stays, `purged_at` says when it went).
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_exports_actor", "actor_id", "created_at"),
        # The pruner's scan: the still-stored exports, oldest first.
        Index("ix_exports_purged_created", "purged_at", "created_at"),
    )
