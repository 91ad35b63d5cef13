"""Tables of read metering: the last read of each contact by each user, and alerts sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class ContactView(Base):
    """When a user last read a contact (answers "who viewed this client")."""

    __tablename__ = "contact_views"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    viewed_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_contact_views_user_viewed", "user_id", "viewed_at"),
        Index("ix_contact_views_contact", "contact_id", "viewed_at"),
    )


class BulkReadAlert(Base):
    """When a user's bulk reading was last reported (at most once per window)."""

    __tablename__ = "bulk_read_alerts"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alerted_at: Mapped[datetime] = mapped_column(UtcDateTime())
