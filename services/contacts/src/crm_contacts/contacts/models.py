"""The contact table and the consent ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    company_id: Mapped[str | None] = mapped_column(String(36), index=True)
    position: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[str] = mapped_column(String(36))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(20))
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # In the trash since then (soft delete); None for a live contact.
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # A privacy request erased the person: a tombstone in the trash, never restored.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Merged into this survivor (and in the trash since); events about it go there.
    merged_into: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index("ix_contacts_owner_created", "owner_id", "created_at", "id"),
        Index("ix_contacts_created", "created_at", "id"),
        Index("ix_contacts_deleted", "deleted_at"),
    )
    # UPDATE ... WHERE version = <read version>: a concurrent edit fails at flush.
    __mapper_args__ = {"version_id_col": version}


class ConsentEntry(Base):
    """One change of one channel's consent: never updated, never deleted."""

    __tablename__ = "consent_ledger"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    channel: Mapped[str] = mapped_column(String(10))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_consent_ledger_contact", "contact_id", "at"),)
