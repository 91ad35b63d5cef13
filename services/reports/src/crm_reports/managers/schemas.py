"""Managers report shape."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from crm_reports.overview.schemas import MoneyTotal


class ManagerRow(BaseModel):
    owner_id: uuid.UUID
    deals_created: int
    deals_won: int
    deals_lost: int
    # won / (won + lost) of the deals closed in the period.
    win_rate: float | None
    revenue_won: list[MoneyTotal]
    average_deal_size: list[MoneyTotal]
    median_cycle_days: float | None


class ManagersRead(BaseModel):
    managers: list[ManagerRow]
