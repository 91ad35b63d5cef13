"""The timeline's API shape: one entry of any kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class TimelineItem(BaseModel):
    """One entry of a contact's history.

    `kind` "activity": a manual activity (`type` call, meeting, email, note, sms;
    `author_id`, `private`, `version` as on /activities). "request": a client
    request (`type` its status, `summary` its subject, `occurred_at` when it was
    opened). "system": derived from another service's event (`type` such as
    `deal.won`, `campaign.message.opened`; `data` the event's key facts).
    """

    kind: Literal["activity", "request", "system"]
    id: str
    contact_id: str
    deal_id: str | None
    type: str
    occurred_at: datetime
    summary: str
    author_id: str | None
    private: bool
    version: int | None
    created_at: datetime
    updated_at: datetime | None
    data: dict[str, Any] | None
