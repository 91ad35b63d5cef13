"""HTTP route of /reports/events."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.events import service
from crm_reports.events.schemas import EventRow, EventsRead
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/events", response_model=EventsRead)
async def events(
    principal: CurrentUser,
    db: DatabaseDep,
    filters: FiltersDep,
    request: Request,
    format: Format = Format.JSON,
) -> EventsRead | Response:
    """Marketing events starting in the period."""
    days = request.app.state.settings.event_follow_up_days
    report = await service.events(db=db, principal=principal, filters=filters, follow_up_days=days)
    if format is Format.CSV:
        rows = []
        for e in report.events:
            row = e.model_dump(mode="json")
            row["revenue"] = " ".join(f"{t.amount} {t.currency}" for t in e.revenue)
            rows.append(row)
        return csv_response(list(EventRow.model_fields), rows, "events")
    return report
