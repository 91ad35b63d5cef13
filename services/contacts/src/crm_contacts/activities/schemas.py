"""Activity API shapes: ActivityCreate and ActivityUpdate in, ActivityRead and TimelineEntry out."""

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
    StringConstraints,
    field_validator,
)

# Any offset in, UTC stored and shown (SPEC: times are ISO 8601 UTC).
Moment = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]


class ActivityType(StrEnum):
    """What people record by hand; `system` entries are derived by the service, never posted."""

    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    NOTE = "note"
    SMS = "sms"


class ActivityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: uuid.UUID
    deal_id: uuid.UUID | None = None
    type: ActivityType
    occurred_at: Moment | None = None  # default: now
    summary: Summary
    private: bool = False


class ActivityUpdate(BaseModel):
    """Only the fields sent change; the contact and the author stay."""

    model_config = ConfigDict(extra="forbid")

    deal_id: uuid.UUID | None = None
    type: ActivityType | None = None
    occurred_at: Moment | None = None
    summary: Summary | None = None
    private: bool | None = None
    version: int | None = None

    @field_validator("type", "occurred_at", "summary", "private")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class ActivityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    contact_id: uuid.UUID
    deal_id: uuid.UUID | None
    type: str
    occurred_at: datetime
    summary: str
    author_id: uuid.UUID
    private: bool
    version: int
    created_at: datetime
    updated_at: datetime
