"""The order table."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_deals.models import Base
from crm_deals.money import STORED_SCALE
from crm_kernel.db import UtcDateTime


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(36), ForeignKey("deals.id"))
    # One order per accepted proposal, even if accept is retried.
    proposal_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("proposals.id"), unique=True
    )
    contact_id: Mapped[str | None] = mapped_column(String(36))
    total: Mapped[Decimal] = mapped_column(Numeric(18, STORED_SCALE))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_orders_deal_created", "deal_id", "created_at", "id"),)


class OrderStatusRecord(Base):
    """Every status an order took and when (the client's status page shows them)."""

    __tablename__ = "order_status_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36), ForeignKey("orders.id"))
    status: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_order_status_changes_order", "order_id", "at"),)
