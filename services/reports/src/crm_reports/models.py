"""Read models of the reports service, built only from events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kernel.db import UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class ContactFact(Base):
    """One row per contact the base has had: who owns it and when it arrived."""

    __tablename__ = "rm_contacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_rm_contacts_owner_created", "owner_id", "created_at"),)
