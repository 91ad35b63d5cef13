"""The company table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    owner_id: Mapped[str] = mapped_column(String(36))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_companies_owner_created", "owner_id", "created_at", "id"),
        Index("ix_companies_created", "created_at", "id"),
        Index("ix_companies_deleted", "deleted_at"),
    )
    __mapper_args__ = {"version_id_col": version}
