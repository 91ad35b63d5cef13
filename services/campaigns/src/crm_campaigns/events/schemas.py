"""Marketing event API shapes: EventCreate/EventUpdate in, EventRead, participants and stats out."""

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
# No NUL characters: PostgreSQL cannot store them (a 422 here, not a 500 there).
TEXT = r"^[^\x00]*$"
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=TEXT)
]
Place = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=TEXT)]
Capacity = Annotated[int, Field(ge=1, le=1_000_000)]
AttributionDays = Annotated[int, Field(ge=1, le=3650)]
SegmentIds = Annotated[list[uuid.UUID], Field(max_length=50)]


class EventKind(StrEnum):
    SEMINAR = "seminar"
    WEBINAR = "webinar"
    EXHIBITION = "exhibition"
    OTHER = "other"


class ParticipantStatus(StrEnum):
    INVITED = "invited"
    REGISTERED = "registered"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: EventKind
    starts_at: Moment
    place: Place | None = None
    capacity: Capacity | None = None  # None: no limit
    attribution_days: AttributionDays = 90


class EventUpdate(BaseModel):
    """Only the fields sent change; `capacity: null` lifts the limit."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    kind: EventKind | None = None
    starts_at: Moment | None = None
    place: Place | None = None
    capacity: Capacity | None = None
    attribution_days: AttributionDays | None = None
    version: int | None = None

    @field_validator("name", "kind", "starts_at", "attribution_days")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: EventKind
    starts_at: datetime
    place: str | None
    capacity: int | None
    attribution_days: int
    invited: int = 0
    registered: int = 0
    attended: int = 0
    version: int
    created_at: datetime
    updated_at: datetime


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_ids: SegmentIds = Field(min_length=1)
    exclude_segment_ids: SegmentIds = []
    # Send each contact new to the list this template (e-mail or SMS) with their link.
    template_id: uuid.UUID | None = None


class InviteResult(BaseModel):
    invited: int  # newly put on the list
    already_listed: int
    # With a template: contacts it could not be sent to (no consent or address, suppressed).
    not_sent: int = 0


class ParticipantRead(BaseModel):
    contact_id: uuid.UUID
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    status: ParticipantStatus
    invited_at: datetime | None
    registered_at: datetime | None
    attended_at: datetime | None


class AttendanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_ids: list[uuid.UUID] = Field(min_length=1, max_length=5000)
    attended: bool


class AttendanceResult(BaseModel):
    updated: int
    # Ids of contacts not in the directory (or not visible to the caller): nothing recorded.
    unknown_contact_ids: list[uuid.UUID] = []


class ImportRowError(BaseModel):
    row: int  # 1-based, the header being row 1
    message: str


class AttendanceImportResult(BaseModel):
    attended: int
    errors: list[ImportRowError] = []


class DealsFollowed(BaseModel):
    """Deals of attendees created / won within `days` after the event started."""

    days: int
    created: int
    won: int
    # Won revenue per ISO 4217 currency, decimal strings.
    revenue: dict[str, str]


class EventStats(BaseModel):
    invited: int
    registered: int
    attended: int
    no_shows: int
    # attended / invited as a decimal string (4 places); None when nobody was invited.
    participation_coefficient: str | None
    seats_left: int | None
    deals: DealsFollowed


class PublicEventView(BaseModel):
    name: str
    starts_at: datetime
    place: str | None
    seats_left: int | None
    registered: bool


class PublicRegistration(BaseModel):
    registered: bool
