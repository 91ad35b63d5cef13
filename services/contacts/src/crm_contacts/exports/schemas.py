"""Export API shapes: the filters (those of the contact list) in, the export's record out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crm_contacts.contacts.schemas import LifecycleStage


class ExportCreate(BaseModel):
    """The contact list's filters (`GET /contacts`, `filter` in the segments' language),
    or the members of a segment (alone: the list's filters do not apply to it)."""

    model_config = ConfigDict(extra="forbid")

    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    lifecycle_stage: LifecycleStage | None = None
    company_id: uuid.UUID | None = None
    tag: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    q: Annotated[str, Field(max_length=200)] | None = None
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    updated_after: AwareDatetime | None = None
    updated_before: AwareDatetime | None = None
    filter: dict[str, Any] | None = None
    segment_id: uuid.UUID | None = None


class ExportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    actor_id: uuid.UUID
    filters: dict[str, Any]
    row_count: int
    created_at: datetime
    download_path: str = ""
    # When the CSV is (or was) deleted; `purged_at` is set once it is gone.
    expires_at: datetime | None = None
    purged_at: datetime | None = None
