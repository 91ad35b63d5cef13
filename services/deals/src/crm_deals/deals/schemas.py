"""Deal API shapes: DealCreate / DealUpdate in, DealRead and the stage history out."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from crm_deals.money import CURRENCIES, MAX_AMOUNT

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
# A decimal string (or number) >= 0; its decimals are checked against the currency.
Amount = Annotated[Decimal, Field(ge=0, lt=MAX_AMOUNT, allow_inf_nan=False)]


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


class DealCreate(BaseModel):
    """A new deal; without `pipeline_id` it goes to the default pipeline, first open stage."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    pipeline_id: uuid.UUID | None = None
    stage_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller.")
    amount: Amount | None = None
    currency: str | None = Field(default=None, description="ISO 4217; CRM_DEFAULT_CURRENCY")
    expected_close_date: date | None = None
    source_campaign_id: uuid.UUID | None = None

    _check_currency = field_validator("currency")(_currency)


class DealUpdate(BaseModel):
    """Fields to change; stage and status change through move, win, lose and reopen."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    amount: Amount | None = None
    currency: str | None = None
    expected_close_date: date | None = None
    source_campaign_id: uuid.UUID | None = None

    _check_currency = field_validator("currency")(_currency)


class DealMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage_id: uuid.UUID


class DealLose(BaseModel):
    """Why the deal was lost: a code from `GET /deals/lost-reasons` (or "other") and free text."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


class DealReopen(BaseModel):
    """Reopen into `stage_id`, or the open stage the deal was in before it closed."""

    model_config = ConfigDict(extra="forbid")

    stage_id: uuid.UUID | None = None


class DealRead(BaseModel):
    id: uuid.UUID
    title: str
    contact_id: uuid.UUID | None
    contact_name: str | None = Field(
        default=None, description="From the contact replica; None while not (yet) known."
    )
    company_id: uuid.UUID | None
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    owner_id: uuid.UUID
    amount: str | None
    currency: str
    expected_close_date: date | None
    status: DealStatus
    lost_reason: str | None
    lost_comment: str | None
    source_campaign_id: uuid.UUID | None
    source: str | None = Field(default=None, description="Lead source, or manual.")
    lead_id: uuid.UUID | None = None
    stage_entered_at: datetime
    closed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class StageStay(BaseModel):
    """One entry in the stage history: a stay in `to_stage_id`, from when to when."""

    id: uuid.UUID
    from_stage_id: uuid.UUID | None
    to_stage_id: uuid.UUID
    to_position: int
    to_probability: str
    reason: str
    entered_at: datetime
    left_at: datetime | None
    moved_by: uuid.UUID | None


class LostReasons(BaseModel):
    reasons: list[str]
