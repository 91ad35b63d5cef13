"""Board API shapes: a pipeline's stages, each with a page of deals and its totals."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from crm_deals.deals.schemas import DealRead
from crm_deals.pipelines.schemas import StageRead


class CurrencyTotal(BaseModel):
    """Sums in one currency (never mixed): decimal strings in the currency's minor unit."""

    currency: str
    amount: str
    # amount x the stage's probability / 100, rounded half-up.
    weighted_amount: str


class BoardColumn(BaseModel):
    stage: StageRead
    # Deals in the stage the caller may see, within the filters (all pages).
    count: int
    totals: list[CurrencyTotal]
    deals: list[DealRead]
    # Pass to GET /pipelines/{id}/board/stages/{stage_id}?cursor= for more of this stage.
    next_cursor: str | None


class Board(BaseModel):
    pipeline_id: uuid.UUID
    name: str
    version: int
    stages: list[BoardColumn]
