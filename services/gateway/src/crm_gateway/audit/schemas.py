"""The merged audit's shapes: one entry of any service, a page with the services left out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    id: str
    service: str = Field(description="Where the entry comes from: gateway, contacts, deals ...")
    at: datetime
    actor_id: str | None = None
    action: str
    record_type: str | None = None
    record_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None
    unavailable: dict[str, str] = Field(
        default_factory=dict,
        description="Services whose audit could not be read (not in `items`), and why.",
    )
