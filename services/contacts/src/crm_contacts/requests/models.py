"""The client_requests table: a client's request and where it stands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class ClientRequest(Base):
    __tablename__ = "client_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    subject: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    assignee_id: Mapped[str] = mapped_column(String(36), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_client_requests_contact_opened", "contact_id", "opened_at", "id"),
        Index("ix_client_requests_opened", "opened_at", "id"),
        Index("ix_client_requests_status", "status"),
    )
    __mapper_args__ = {"version_id_col": version}
