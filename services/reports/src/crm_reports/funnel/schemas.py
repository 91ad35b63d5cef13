"""Funnel report shape."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class FunnelStage(BaseModel):
    stage_id: uuid.UUID
    name: str | None
    position: int | None
    kind: str
    entered: int
    moved_on: int
    won: int
    # Of the deals that entered this stage, the share that later reached a stage further on.
    conversion_to_next: float | None
    conversion_to_won: float | None
    avg_days_in_stage: float | None
    median_days_in_stage: float | None


class FunnelRead(BaseModel):
    pipeline_id: uuid.UUID
    stages: list[FunnelStage]
