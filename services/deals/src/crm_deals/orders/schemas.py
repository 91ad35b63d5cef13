"""Order API shapes and the order status machine."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class OrderStatus(StrEnum):
    CREATED = "created"
    INVOICED = "invoiced"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# Forward one step at a time; cancel from any state that is not final.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.INVOICED, OrderStatus.CANCELLED}),
    OrderStatus.INVOICED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class OrderStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus


class OrderRead(BaseModel):
    id: uuid.UUID
    deal_id: uuid.UUID
    proposal_id: uuid.UUID | None
    contact_id: uuid.UUID | None
    total: str
    currency: str
    status: OrderStatus
    version: int
    created_at: datetime
    updated_at: datetime


class StatusAt(BaseModel):
    status: OrderStatus
    at: datetime


class PublicOrderRead(BaseModel):
    """What the client sees through the signed link: the order only, nothing personal."""

    number: str
    status: OrderStatus
    status_history: list[StatusAt]
    total: str
    currency: str
    updated_at: datetime
