"""Webhook API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

EventTypePattern = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_.*]{1,200}$")
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: list[EventTypePattern] = Field(
        min_length=1,
        max_length=50,
        description='Event types to deliver; "*" matches any run of characters, e.g. '
        '"crm.deals.*" or "*".',
    )
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)] | None = Field(
        default=None, description="Signing secret; generated when omitted. Shown only now."
    )
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    is_active: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: list[EventTypePattern] | None = Field(default=None, min_length=1, max_length=50)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    is_active: bool | None = None


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    """The subscription with its secret: the only time the secret is shown."""

    secret: str


class WebhookAttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryRead(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempt_log: list[WebhookAttemptRead]
