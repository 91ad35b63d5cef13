"""KPIs report shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Kpi(BaseModel):
    """One indicator in this period and the one before (same length); money per currency."""

    name: str
    currency: str | None = None
    value: float | None
    previous: float | None
    # (value - previous) / previous.
    change: float | None


class KpisRead(BaseModel):
    period_from: datetime
    period_to: datetime
    previous_from: datetime
    kpis: list[Kpi]
