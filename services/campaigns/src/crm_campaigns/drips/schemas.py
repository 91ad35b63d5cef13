"""Drip sequence API shapes: the trigger, the steps, and what enrolments look like."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# No NUL characters: PostgreSQL cannot store them (a 422 here, not a 500 there).
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]*$"),
]
MAX_STEPS = 50
MAX_WAIT_SECONDS = 366 * 24 * 3600


class TriggerKind(StrEnum):
    SEGMENT_JOINED = "segment_joined"
    LEAD_RECEIVED = "lead_received"
    DEAL_STAGE_ENTERED = "deal_stage_entered"


class SequenceStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"


class EnrolmentStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TriggerKind
    segment_id: uuid.UUID | None = None  # segment_joined
    stage_id: uuid.UUID | None = None  # deal_stage_entered

    @model_validator(mode="after")
    def _target(self) -> Trigger:
        if self.kind is TriggerKind.SEGMENT_JOINED and self.segment_id is None:
            raise ValueError("segment_joined needs segment_id")
        if self.kind is TriggerKind.DEAL_STAGE_ENTERED and self.stage_id is None:
            raise ValueError("deal_stage_entered needs stage_id")
        return self


class WaitStep(BaseModel):
    """Wait this long after reaching the step (the parts add up)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["wait"]
    days: int = Field(default=0, ge=0, le=366)
    hours: int = Field(default=0, ge=0, le=24 * 366)
    minutes: int = Field(default=0, ge=0, le=60 * 24 * 366)
    seconds: int = Field(default=0, ge=0, le=MAX_WAIT_SECONDS)

    @property
    def total_seconds(self) -> int:
        return self.days * 86400 + self.hours * 3600 + self.minutes * 60 + self.seconds

    @model_validator(mode="after")
    def _positive(self) -> WaitStep:
        if not 0 < self.total_seconds <= MAX_WAIT_SECONDS:
            raise ValueError("a wait lasts more than 0 seconds and at most 366 days")
        return self


class SendStep(BaseModel):
    """Send a template (its channel: e-mail or SMS) if the contact consents to that channel."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["send"]
    template_id: uuid.UUID


class BranchStep(BaseModel):
    """Go to `then_step` if the previous send was opened (clicked), else to `else_step`.

    The branch waits up to `within_seconds` from reaching it, moving on as soon
    as the open (click) is recorded; at the deadline it takes `else_step`.
    A step number is an index into `steps` after this one; null ends the sequence.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["branch"]
    on: Literal["opened", "clicked"]
    within_seconds: int = Field(default=0, ge=0, le=MAX_WAIT_SECONDS)
    then_step: int | None = None
    else_step: int | None = None


class ExitStep(BaseModel):
    """End the contact's sequence here (e.g. after one path of a branch)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["exit"]


Step = Annotated[WaitStep | SendStep | BranchStep | ExitStep, Field(discriminator="kind")]


def _check_steps(steps: list[Step]) -> None:
    """Branches jump forward only (so every enrolment ends) and follow a send."""
    for index, step in enumerate(steps):
        if not isinstance(step, BranchStep):
            continue
        if not any(isinstance(s, SendStep) for s in steps[:index]):
            raise ValueError(f"steps.{index}: a branch needs a send step before it")
        for target in (step.then_step, step.else_step):
            if target is not None and not index < target < len(steps):
                raise ValueError(
                    f"steps.{index}: {target} is not a later step (null ends the sequence)"
                )


class SequenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _steps(self) -> SequenceCreate:
        _check_steps(self.steps)
        return self


class SequenceUpdate(BaseModel):
    """Name any time; trigger and steps only while a draft (enrolments hold step numbers)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    trigger: Trigger | None = None
    steps: list[Step] | None = Field(default=None, min_length=1, max_length=MAX_STEPS)
    version: int | None = None

    @model_validator(mode="after")
    def _steps(self) -> SequenceUpdate:
        if self.steps is not None:
            _check_steps(self.steps)
        return self


class SequenceRead(BaseModel):
    id: uuid.UUID
    name: str
    status: SequenceStatus
    trigger: Trigger
    steps: list[Step]
    enrolled: int = 0
    active: int = 0
    completed: int = 0
    version: int
    created_at: datetime
    updated_at: datetime


class EnrolmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    contact_id: uuid.UUID
    status: EnrolmentStatus
    step: int
    due_at: datetime
    enrolled_at: datetime
    finished_at: datetime | None
    last_error: str | None
