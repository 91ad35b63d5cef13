"""Automation API shapes: AutomationCreate / AutomationUpdate in, AutomationRead and runs out.

`action` says what the rule does, by `type`:
- create_task: a task for the deal's owner, due `due_in_minutes` after the deal entered;
- send_email / send_sms: a template to the deal's contact (only with consent);
- notify: an in-app notice to one user or every user of a role;
- stalled: a deal still in the stage `after_days` after entering it is reported stalled.
Texts are sandboxed Jinja2 templates over `deal` and `contact` (see templates.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crm_kernel.auth import Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Line = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Body = Annotated[str, StringConstraints(max_length=20_000)]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateTaskAction(_Action):
    type: Literal["create_task"]
    title: Line
    # A year at most: the task is due this long after the deal entered the stage.
    due_in_minutes: int = Field(default=24 * 60, ge=0, le=525_600)
    remind_before_minutes: int | None = Field(default=None, ge=0, le=525_600)


class SendEmailAction(_Action):
    type: Literal["send_email"]
    subject: Line
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class SendSmsAction(_Action):
    type: Literal["send_sms"]
    body: Annotated[str, StringConstraints(min_length=1, max_length=1_000)]


class NotifyAction(_Action):
    type: Literal["notify"]
    user_id: uuid.UUID | None = None
    role: Role | None = None
    title: Line
    body: Body = ""

    @model_validator(mode="after")
    def _one_recipient(self) -> NotifyAction:
        if (self.user_id is None) == (self.role is None):
            raise ValueError("give exactly one of user_id and role")
        return self


class StalledAction(_Action):
    type: Literal["stalled"]
    after_days: int = Field(ge=1, le=3650)


Action = Annotated[
    CreateTaskAction | SendEmailAction | SendSmsAction | NotifyAction | StalledAction,
    Field(discriminator="type"),
]


class AutomationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    action: Action
    active: bool = True


class AutomationUpdate(BaseModel):
    """Rename, switch on/off, or replace the action (the stage stays: make a new rule)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    action: Action | None = None
    active: bool | None = None


class AutomationRead(BaseModel):
    id: uuid.UUID
    name: str
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    action: Action
    active: bool
    created_by: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class AutomationRunRead(BaseModel):
    """One run: `done`, or `skipped` with why (no consent, no address, contact unknown...)."""

    automation_id: uuid.UUID
    stay_id: uuid.UUID
    deal_id: uuid.UUID
    outcome: str
    detail: str | None
    at: datetime
