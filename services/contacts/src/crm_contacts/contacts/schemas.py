"""Contact API shapes: ContactCreate in, ContactRead out."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


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
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    company_id: uuid.UUID | None = None
    position: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    owner_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller.")
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    lifecycle_stage: LifecycleStage | None = None
    consent: Consent = Field(default_factory=Consent)
    custom: dict[str, Any] = Field(default_factory=dict, max_length=100)


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
