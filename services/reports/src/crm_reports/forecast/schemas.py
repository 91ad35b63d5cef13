"""Forecast report shape."""

from __future__ import annotations

from pydantic import BaseModel


class ForecastMonth(BaseModel):
    """Open deals expected to close in a month (None: no expected close date), in one currency."""

    month: str | None
    currency: str
    deals: int
    amount: str
    # Each deal's amount times its stage's win probability.
    weighted_by_probability: str
    # Each deal's amount times the historical share of deals in its stage that were won.
    weighted_by_history: str


class StageConversion(BaseModel):
    stage_id: str
    closed_deals: int
    won_deals: int
    conversion_to_won: float | None


class ForecastRead(BaseModel):
    months: list[ForecastMonth]
    stages: list[StageConversion]
