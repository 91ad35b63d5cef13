"""Notification API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from crm_notifications.sms import is_e164, normalise_phone


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class NotificationCreate(BaseModel):
    """A transactional message from an integration: e-mail (subject + body) or SMS (body)."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    to: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
    subject: Annotated[str, StringConstraints(max_length=998)] | None = None
    body_text: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    body_html: Annotated[str, StringConstraints(max_length=1_000_000)] | None = None
    key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="Idempotency: a second request with the same key is the same message.",
    )

    @model_validator(mode="after")
    def _fits_channel(self) -> NotificationCreate:
        if self.channel is Channel.EMAIL:
            EmailAddress.model_validate({"address": self.to})
            if not self.subject:
                raise ValueError("an e-mail needs a subject")
        else:
            self.to = normalise_phone(self.to)
            if not is_e164(self.to):
                raise ValueError("to: an SMS needs an E.164 phone number, e.g. +79123456789")
        return self


class EmailAddress(BaseModel):
    address: EmailStr


class AttemptRead(BaseModel):
    at: datetime
    outcome: str
    detail: str | None


class NotificationRead(BaseModel):
    id: uuid.UUID
    key: str
    channel: str
    category: str
    recipient: str
    template_id: uuid.UUID | None = None
    status: str
    attempts: int
    uncertain_attempts: int
    last_error: str | None
    segments: int | None
    cost_estimate: Decimal | None
    source_type: str | None
    source_id: str | None
    contact_id: str | None = None
    created_at: datetime
    sent_at: datetime | None


class NotificationDetail(NotificationRead):
    subject: str | None
    attempt_log: list[AttemptRead]
