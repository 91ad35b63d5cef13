"""Lead rules (who gets a new lead) and the leads received."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class LeadRule(Base):
    __tablename__ = "lead_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # round_robin, least_open_leads, by_tag
    team_id: Mapped[str | None] = mapped_column(String(36))
    # by_tag: [{"tag": ..., "owner_id": ...}], first match wins.
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    fallback_owner_id: Mapped[str] = mapped_column(String(36))
    form_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    pipeline_id: Mapped[str | None] = mapped_column(String(36))
    default_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped first thing in every intake through the rule: the row lock that
    # serialises concurrent assignments (round-robin state below).
    leads_received: Mapped[int] = mapped_column(Integer, default=0)
    last_owner_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_lead_rules_created", "created_at", "id"),)


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    is_new_contact: Mapped[bool] = mapped_column(Boolean)
    owner_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10))  # open, closed
    source: Mapped[str] = mapped_column(String(50))
    rule_id: Mapped[str | None] = mapped_column(String(36))
    form_key: Mapped[str | None] = mapped_column(String(64))
    pipeline_id: Mapped[str | None] = mapped_column(String(36))
    title: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)
    company_name: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str | None] = mapped_column(String(3))
    utm: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    actor_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_leads_owner_status", "owner_id", "status"),
        Index("ix_leads_contact", "contact_id"),
        Index("ix_leads_received", "received_at", "id"),
    )
