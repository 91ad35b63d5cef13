"""Pipeline API shapes: PipelineCreate / PipelineUpdate in, PipelineRead out; stage edits."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Win probability in percent, up to two decimals (e.g. 12.5); an int is fine too.
Probability = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    probability: Probability
    kind: StageKind = StageKind.OPEN


class PipelineCreate(BaseModel):
    """A new pipeline; without `stages` it gets the default ones (in `CRM_LOCALE`).

    Stages are in order; exactly one `won` and one `lost` stage and at least
    one `open` stage.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name
    stages: list[StageIn] | None = Field(default=None, min_length=3, max_length=50)


class PipelineUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class StageCreate(StageIn):
    """A new stage; `position` defaults to just after the last open stage."""

    position: Annotated[int, Field(ge=0)] | None = None


class StageUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    probability: Probability | None = None


class StageOrder(BaseModel):
    """Every stage of the pipeline, in the new order."""

    model_config = ConfigDict(extra="forbid")

    stage_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)


class StageRead(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    probability: str
    kind: StageKind


class PipelineRead(BaseModel):
    id: uuid.UUID
    name: str
    is_default: bool
    stages: list[StageRead]
    version: int
    created_at: datetime
    updated_at: datetime
