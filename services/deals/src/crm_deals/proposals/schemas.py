"""Proposal API shapes: ProposalCreate in, ProposalRead out."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from crm_deals.money import MAX_AMOUNT, check_currency

# Four decimals at most: what the database keeps (prices per unit may be finer
# than the currency's minor unit; line totals are rounded to it).
Quantity = Annotated[Decimal, Field(gt=0, lt=Decimal("1e9"), decimal_places=4)]
UnitPrice = Annotated[Decimal, Field(ge=0, lt=MAX_AMOUNT, decimal_places=4)]
Discount = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]


class ProposalStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ProposalItemIn(BaseModel):
    """A line: a catalogue product (name and price default to its own) or free text."""

    model_config = ConfigDict(extra="forbid")

    product_id: uuid.UUID | None = None
    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
        | None
    ) = None
    quantity: Quantity
    unit_price: UnitPrice | None = None
    discount_percent: Discount = Decimal(0)
    # Optional; if given it must be the proposal's (a proposal is in one currency).
    currency: str | None = None

    _currency = field_validator("currency")(
        lambda value: check_currency(value) if value is not None else None
    )


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deal_id: uuid.UUID
    currency: str | None = Field(default=None, description="Defaults to the deal's currency.")
    items: list[ProposalItemIn] = Field(min_length=1, max_length=200)

    _currency = field_validator("currency")(
        lambda value: check_currency(value) if value is not None else None
    )


class ProposalItemsReplace(BaseModel):
    """The new lines of a draft (all of them), optionally in another currency."""

    model_config = ConfigDict(extra="forbid")

    currency: str | None = Field(default=None, description="Defaults to the current one.")
    items: list[ProposalItemIn] = Field(min_length=1, max_length=200)

    _currency = field_validator("currency")(
        lambda value: check_currency(value) if value is not None else None
    )


class ProposalItemRead(BaseModel):
    product_id: uuid.UUID | None
    name: str
    quantity: str
    unit_price: str
    discount_percent: str
    line_total: str


class ProposalRead(BaseModel):
    id: uuid.UUID
    deal_id: uuid.UUID
    currency: str
    items: list[ProposalItemRead]
    total: str
    status: ProposalStatus
    version: int
    created_at: datetime
    updated_at: datetime
