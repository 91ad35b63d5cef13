"""Tables of the recipient directory: contacts, segments, static members, RFM groups, suppressions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_campaigns.models import Base
from crm_kernel.db import UtcDateTime

# A version no contact event reaches: a merged or erased contact never comes back.
FINAL_VERSION = 2**31 - 1


class Recipient(Base):
    """What campaigns need to know about one contact (newest version wins)."""

    __tablename__ = "recipients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    position: Mapped[str | None] = mapped_column(String(200))
    company_id: Mapped[str | None] = mapped_column(String(36))
    owner_id: Mapped[str] = mapped_column(String(36), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(20))
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Set when merged into another contact (the survivor) or erased: gone for good.
    merged_into: Mapped[str | None] = mapped_column(String(36))
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer)


class RecipientScore(Base):
    """The RFM group reports gave a contact (newest `as_of` wins)."""

    __tablename__ = "recipient_scores"

    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rfm_group: Mapped[str] = mapped_column(String(40))
    as_of: Mapped[datetime] = mapped_column(UtcDateTime())


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # static, dynamic
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)


class SegmentMember(Base):
    """A member of a static segment."""

    __tablename__ = "segment_members"

    segment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)


Index("ix_segment_members_contact", SegmentMember.contact_id)


class Suppression(Base):
    """An address never to message again (unsubscribed, bounced, complained, erased)."""

    __tablename__ = "suppressions"

    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # normalised
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
