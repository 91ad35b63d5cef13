"""Requests report shape."""

from __future__ import annotations

from pydantic import BaseModel


class RequestsRow(BaseModel):
    # None: the total over every assignee shown.
    assignee_id: str | None
    opened: int
    resolved: int
    open_now: int
    # Of the requests resolved in the period.
    avg_resolution_hours: float | None


class RequestsRead(BaseModel):
    rows: list[RequestsRow]
