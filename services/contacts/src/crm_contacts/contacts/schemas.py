"""Contact API shapes: ContactCreate and ContactUpdate in, ContactRead out."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]
Position = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Tags = Annotated[list[Tag], Field(max_length=50)]
Custom = Annotated[dict[str, Any], Field(max_length=100)]

# At most this many contacts in one bulk request (one transaction).
BULK_MAX = 500


class LifecycleStage(StrEnum):
    AWARENESS = "awareness"
    EXPLORATION = "exploration"
    EXPANSION = "expansion"
    COMMITMENT = "commitment"
    DISSOLUTION = "dissolution"


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool = False
    sms: bool = False


class ContactCreate(BaseModel):
    """A new person; the phone is normalised to E.164, the e-mail lower-cased."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name
    last_name: Name | None = None
    email: EmailStr | None = None
    phone: Phone | None = None
    company_id: uuid.UUID | None = None
    position: Position | None = None
    owner_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller.")
    tags: Tags = Field(default_factory=list)
    lifecycle_stage: LifecycleStage | None = None
    consent: Consent = Field(default_factory=Consent)
    consent_source: Source = Field(
        default="api", description="Where a consent given at creation came from (ledger)."
    )
    custom: Custom = Field(default_factory=dict)


class ConsentUpdate(BaseModel):
    """A change of consent; a channel left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    email: bool | None = None
    sms: bool | None = None
    source: Source = Field(default="api", description="e.g. web_form, phone_call, import")


class ContactUpdate(BaseModel):
    """Only the fields sent change; `null` clears an optional one. Owners change by reassign."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    email: EmailStr | None = None
    phone: Phone | None = None
    company_id: uuid.UUID | None = None
    position: Position | None = None
    tags: Tags | None = None
    lifecycle_stage: LifecycleStage | None = None
    consent: ConsentUpdate | None = None
    custom: Custom | None = None
    # The version the client read; an alternative to If-Match.
    version: int | None = None

    @field_validator("first_name", "tags", "custom", "consent")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Defaults are not validated, so only an explicit `null` reaches here.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class ContactRead(BaseModel):
    id: uuid.UUID
    first_name: str
    last_name: str | None
    email: str | None
    phone: str | None
    company_id: uuid.UUID | None
    position: str | None
    owner_id: uuid.UUID
    tags: list[str]
    lifecycle_stage: LifecycleStage | None
    consent: Consent
    custom: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class Reassign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_id: uuid.UUID


class BulkReassign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=BULK_MAX)]
    owner_id: uuid.UUID


class BulkReassigned(BaseModel):
    owner_id: uuid.UUID
    ids: list[uuid.UUID]
    count: int


class ConsentEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str
    granted: bool
    source: str
    actor_id: str | None
    at: datetime


class DuplicateRead(BaseModel):
    """A likely twin: `reasons` are the matching signals (email, phone, name, company_id)."""

    contact: ContactRead
    reasons: list[str]
    score: int


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other_id: uuid.UUID = Field(description="The contact merged into this one (and removed).")


class ViewerRead(BaseModel):
    """Who read a contact, and when last."""

    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    viewed_at: datetime
