"""Churn report shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AtRisk(BaseModel):
    contact_id: str
    owner_id: str
    last_touch_at: datetime
    days_since: float
    # Median days between the customer's consecutive touches (a default when fewer than two).
    usual_interval_days: float
    deals_won: int


class ChurnRead(BaseModel):
    as_of: datetime
    customers: int
    at_risk: list[AtRisk]
