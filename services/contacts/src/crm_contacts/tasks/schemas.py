"""Task API shapes: TaskCreate and TaskUpdate in, TaskRead out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

Moment = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# Up to four weeks ahead; None: no due-soon reminder.
# At most four weeks ahead (also for tasks made by the task.create command).
MAX_REMIND_MINUTES = 40_320
RemindBefore = Annotated[int, Field(ge=0, le=MAX_REMIND_MINUTES)]


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class TaskCreate(BaseModel):
    """A task needs a contact or a deal (or both)."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    due_at: Moment
    assignee_id: uuid.UUID | None = None  # default: the caller
    contact_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    remind_before_minutes: RemindBefore | None = None


class TaskUpdate(BaseModel):
    """Only the fields sent change; `status: done` completes, `open` reopens."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    due_at: Moment | None = None
    assignee_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    status: TaskStatus | None = None
    remind_before_minutes: RemindBefore | None = None
    version: int | None = None

    @field_validator("title", "due_at", "assignee_id", "status")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    due_at: datetime
    assignee_id: uuid.UUID
    contact_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    status: TaskStatus
    remind_before_minutes: int | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
