"""Cycle report shape."""

from __future__ import annotations

from pydantic import BaseModel


class CycleGroup(BaseModel):
    """One group's distribution of days from creation to win (deals won in the period)."""

    by: str  # all, pipeline, owner, source
    key: str | None
    deals_won: int
    median_days: float | None
    p75_days: float | None
    p90_days: float | None


class CycleRead(BaseModel):
    groups: list[CycleGroup]
