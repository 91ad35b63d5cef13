"""Read models of the reports service, built only from events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, Integer, MetaData, Numeric, String
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


class DealFact(Base):
    """The newest state of each deal (by its version): owner, stage, status, money, dates."""

    __tablename__ = "rm_deals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36))
    pipeline_id: Mapped[str] = mapped_column(String(36))
    stage_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_rm_deals_owner_status", "owner_id", "status"),
        Index("ix_rm_deals_status_closed", "status", "closed_at"),
    )


class StageFact(Base):
    """Each pipeline stage's win probability, from pipeline events (for weighted amounts)."""

    __tablename__ = "rm_stages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[int | None] = mapped_column(Integer)
    probability: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    kind: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer)


class StageStay(Base):
    """One stay of a deal in a stage: entered, and left (None while it is there).

    Keyed by deal, stage and entry time, so the event that opens a stay and the
    one that closes it write the same row in whichever order they arrive.
    """

    __tablename__ = "rm_stage_stays"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36))
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_rm_stage_stays_pipeline_stage", "pipeline_id", "stage_id"),)
