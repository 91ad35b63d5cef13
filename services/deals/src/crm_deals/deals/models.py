"""Deal and stage-history tables."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_deals.models import Base
from crm_deals.money import STORED_SCALE
from crm_kernel.db import UtcDateTime


class Deal(Base):
    __tablename__ = "deals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    contact_id: Mapped[str | None] = mapped_column(String(36), index=True)
    company_id: Mapped[str | None] = mapped_column(String(36), index=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), ForeignKey("pipelines.id"))
    stage_id: Mapped[str] = mapped_column(String(36), ForeignKey("stages.id"))
    owner_id: Mapped[str] = mapped_column(String(36))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, STORED_SCALE))
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))
    # A code from CRM_LOST_REASONS (or "other"), and the free text that explains it.
    lost_reason: Mapped[str | None] = mapped_column(String(100))
    lost_comment: Mapped[str | None] = mapped_column(String(1000))
    source_campaign_id: Mapped[str | None] = mapped_column(String(36))
    # Where the deal came from (a lead's source, or "manual") and the lead that
    # opened it: one deal per lead, whatever the redeliveries (unique index).
    source: Mapped[str | None] = mapped_column(String(50))
    lead_id: Mapped[str | None] = mapped_column(String(36))
    stage_entered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # In the WHERE clause of every update (SQLAlchemy's version counter): two
    # concurrent moves of one deal cannot both win.
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # The board: one stage's first page, newest first, and the per-stage aggregates.
        Index("ix_deals_stage_created", "pipeline_id", "stage_id", "created_at", "id"),
        Index("ix_deals_stage_currency", "pipeline_id", "stage_id", "currency", "amount"),
        # A rep's (or a team's) board: their deals of one stage in page order,
        # and the rows their per-stage sums read.
        Index(
            "ix_deals_owner_stage_created",
            "owner_id",
            "pipeline_id",
            "stage_id",
            "created_at",
            "id",
        ),
        # A rep's own deals in lists.
        Index("ix_deals_owner_created", "owner_id", "created_at", "id"),
        Index("ix_deals_created", "created_at", "id"),
        Index("ux_deals_lead", "lead_id", unique=True),
    )


class StageHistory(Base):
    """One stay of a deal in a stage: entered (from where, by whom), left (or still there)."""

    __tablename__ = "stage_history"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(36), ForeignKey("deals.id"))
    pipeline_id: Mapped[str] = mapped_column(String(36))
    from_stage_id: Mapped[str | None] = mapped_column(String(36))
    to_stage_id: Mapped[str] = mapped_column(String(36))
    # The stage's position and probability when the deal entered it (stages
    # can be reordered later; the history keeps what was true then).
    to_position: Mapped[int] = mapped_column(Integer)
    to_probability: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    reason: Mapped[str] = mapped_column(String(20))
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    moved_by: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index("ix_stage_history_deal_entered", "deal_id", "entered_at", "id"),
        Index("ix_stage_history_to_stage", "to_stage_id", "entered_at"),
    )
