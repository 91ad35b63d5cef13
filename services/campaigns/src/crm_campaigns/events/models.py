"""Tables of marketing events: the events, their participants, and the deals of contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_campaigns.models import Base
from crm_kernel.db import UtcDateTime


class MarketingEvent(Base):
    __tablename__ = "marketing_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    place: Mapped[str | None] = mapped_column(String(500))
    # None: no limit on registrations.
    capacity: Mapped[int | None] = mapped_column(Integer)
    # Deals of attendees created or won within this many days after the start "followed" it.
    attribution_days: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __mapper_args__ = {"version_id_col": version}


class EventParticipant(Base):
    """One contact on an event's list; the timestamps say how far they got."""

    __tablename__ = "marketing_event_participants"

    event_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("marketing_events.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    status: Mapped[str] = mapped_column(String(20))  # invited, registered, attended, no_show
    invited_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_marketing_event_participants_status", "event_id", "status"),)


class ContactDeal(Base):
    """A deal of a contact, as deal events tell it: enough to find deals that followed an event."""

    __tablename__ = "marketing_event_deals"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), index=True)
    amount: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    won_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)
