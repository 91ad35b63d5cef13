"""Import API shapes: the job (progress) and the dry run's report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ImportRead(BaseModel):
    """A job's progress: `processed` of `total` rows; `errors` lists bad rows (line, field, why)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str  # pending, running, done
    duplicate_policy: str
    encoding: str
    delimiter: str
    mapping: dict[str, str]
    total: int
    processed: int
    created: int
    updated: int
    skipped: int
    errors: list[dict[str, Any]]
    error_count: int
    created_at: datetime
    finished_at: datetime | None


class DryRunReport(BaseModel):
    """What a real run would do; nothing was written."""

    dry_run: bool = True
    encoding: str
    delimiter: str
    mapping: dict[str, str]
    total: int
    created: int
    updated: int
    skipped: int
    errors: list[dict[str, Any]]
    error_count: int
