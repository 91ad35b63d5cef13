"""The segment tables: definitions and the members of static segments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # static, dynamic
    # The kernel filter language (crm_kernel.filters); dynamic segments only.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    owner_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_segments_owner_created", "owner_id", "created_at", "id"),
        Index("ix_segments_created", "created_at", "id"),
    )
    __mapper_args__ = {"version_id_col": version}


class SegmentMember(Base):
    """A contact listed in a static segment."""

    __tablename__ = "segment_members"

    segment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_segment_members_contact", "contact_id"),)
