"""Client request API shapes: RequestCreate and RequestUpdate in, RequestRead out."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, computed_field, field_validator

Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Description = Annotated[str, StringConstraints(max_length=10_000)]


class RequestStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"


# The only moves a request makes; resolved -> open reopens it.
TRANSITIONS: dict[str, set[str]] = {
    RequestStatus.OPEN: {RequestStatus.IN_PROGRESS},
    RequestStatus.IN_PROGRESS: {RequestStatus.RESOLVED},
    RequestStatus.RESOLVED: {RequestStatus.OPEN},
}


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: uuid.UUID
    subject: Subject
    description: Description | None = None
    assignee_id: uuid.UUID | None = None  # default: the caller


class RequestUpdate(BaseModel):
    """Only the fields sent change; `status` moves along TRANSITIONS."""

    model_config = ConfigDict(extra="forbid")

    subject: Subject | None = None
    description: Description | None = None
    assignee_id: uuid.UUID | None = None
    status: RequestStatus | None = None
    version: int | None = None

    @field_validator("subject", "assignee_id", "status")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    contact_id: uuid.UUID
    subject: str
    description: str | None
    status: RequestStatus
    opened_at: datetime
    resolved_at: datetime | None
    assignee_id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolution_seconds(self) -> int | None:
        """Seconds from opening to resolution, on resolved requests only."""
        if self.resolved_at is None:
            return None
        return int((self.resolved_at - self.opened_at).total_seconds())
