"""In-app notice API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class NoticeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    body: str
    link: str | None
    category: str
    source_type: str | None
    source_id: str | None
    created_at: datetime
    read_at: datetime | None


class ReadAllResult(BaseModel):
    marked_read: int
