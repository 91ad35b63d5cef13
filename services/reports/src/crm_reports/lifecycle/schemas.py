"""Lifecycle report shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class LifecycleBucket(BaseModel):
    """Contacts per lifecycle stage as they stood at the end of the bucket (`none`: no stage)."""

    bucket_start: datetime
    bucket_end: datetime
    stages: dict[str, int]


class LifecycleRead(BaseModel):
    bucket: str
    time_zone: str
    buckets: list[LifecycleBucket]
