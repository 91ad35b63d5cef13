"""Proposal and proposal line tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_deals.models import Base
from crm_deals.money import STORED_SCALE
from crm_kernel.db import UtcDateTime


class Proposal(Base):
    __tablename__ = "proposals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(36), ForeignKey("deals.id"))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(18, STORED_SCALE))
    status: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_proposals_deal_created", "deal_id", "created_at", "id"),)


class ProposalItem(Base):
    __tablename__ = "proposal_items"

    proposal_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("proposals.id"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[str | None] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, STORED_SCALE))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, STORED_SCALE))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    line_total: Mapped[Decimal] = mapped_column(Numeric(18, STORED_SCALE))
