"""Product API shapes: ProductCreate / ProductUpdate in, ProductRead out."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from crm_deals.money import MAX_AMOUNT, check_currency

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Price = Annotated[Decimal, Field(ge=0, lt=MAX_AMOUNT, allow_inf_nan=False)]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    sku: Sku
    unit_price: Price
    currency: str
    active: bool = True

    _currency = field_validator("currency")(check_currency)


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    unit_price: Price | None = None
    active: bool | None = None


class ProductRead(BaseModel):
    id: uuid.UUID
    name: str
    sku: str
    unit_price: str
    currency: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
