"""Stalled report shape."""

from __future__ import annotations

from pydantic import BaseModel


class StalledDeal(BaseModel):
    deal_id: str
    owner_id: str
    pipeline_id: str
    stage_id: str
    stage_name: str | None
    days_in_stage: float
    # The p75 of finished stays in this stage over the whole history.
    usual_days: float


class StalledRead(BaseModel):
    deals: list[StalledDeal]
