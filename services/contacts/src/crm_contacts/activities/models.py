"""The activity table: manual entries on a contact's timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class Activity(Base):
    __tablename__ = "activities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    deal_id: Mapped[str | None] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    summary: Mapped[str] = mapped_column(Text)
    author_id: Mapped[str] = mapped_column(String(36))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        # The timeline: one contact's activities, newest first.
        Index("ix_activities_contact_occurred", "contact_id", "occurred_at", "id"),
        Index("ix_activities_occurred", "occurred_at", "id"),
    )
    __mapper_args__ = {"version_id_col": version}
