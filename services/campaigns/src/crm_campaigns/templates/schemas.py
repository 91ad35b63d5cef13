"""Template API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: Literal["email", "sms"]
    subject: str | None = Field(default=None, max_length=500)
    body_html: str | None = Field(default=None, max_length=200_000)
    body_text: str = Field(default="", max_length=200_000)

    @model_validator(mode="after")
    def _channel_parts(self) -> TemplateBody:
        if self.channel == "email" and not (self.subject and self.subject.strip()):
            raise ValueError("subject: an e-mail template needs a subject")
        if self.channel == "email" and not (self.body_html or self.body_text):
            raise ValueError("body_html: an e-mail template needs an HTML or a text body")
        if self.channel == "sms":
            if not self.body_text.strip():
                raise ValueError("body_text: an SMS template needs a text")
            if self.subject or self.body_html:
                raise ValueError("an SMS template has only body_text")
        return self


class TemplateCreate(TemplateBody):
    pass


class TemplateUpdate(TemplateBody):
    version: int | None = None


class TemplateRead(BaseModel):
    id: str
    name: str
    channel: str
    subject: str | None
    body_html: str | None
    body_text: str
    created_by: str
    version: int
    created_at: datetime
    updated_at: datetime


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: str


class PreviewRead(BaseModel):
    subject: str | None
    html: str | None
    text: str
