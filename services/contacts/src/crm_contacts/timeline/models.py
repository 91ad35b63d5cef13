"""The table of system timeline entries (one per source event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class TimelineEntry(Base):
    __tablename__ = "timeline_entries"

    # The source event's id: a redelivered event finds its entry already there.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(60))  # e.g. deal.won, campaign.message.opened
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    summary: Mapped[str] = mapped_column(Text)
    deal_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_timeline_entries_contact_occurred", "contact_id", "occurred_at", "id"),
    )


class DealContact(Base):
    """Which contact a deal is about (from deal events), to place proposal events."""

    __tablename__ = "deal_contacts"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
