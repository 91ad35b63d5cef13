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
    # Manual activities in the period by type (call, meeting, email, note, sms).
    activities: dict[str, int]
    # The owner's tasks open past their due time now.
    overdue_tasks: int
    # Lead mix: wins expected from the historical win rate of each closed deal's
    # source and amount band, and how the actual wins compare (1.0 = as expected).
    expected_wins: float | None
    wins_vs_expected: float | None
    # The base's overall win rate scaled by wins_vs_expected: comparable across lead mixes.
    mix_adjusted_win_rate: float | None


class ManagersRead(BaseModel):
    managers: list[ManagerRow]
