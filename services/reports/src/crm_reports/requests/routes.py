"""HTTP route of /reports/requests."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.http import Format, csv_response
from crm_reports.requests import service
from crm_reports.requests.schemas import RequestsRead, RequestsRow
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/requests", response_model=RequestsRead)
async def requests(
    principal: CurrentUser, db: DatabaseDep, filters: FiltersDep, format: Format = Format.JSON
) -> RequestsRead | Response:
    """Per assignee, and a total line (`assignee_id` empty)."""
    report = await service.requests(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        rows = (r.model_dump(mode="json") for r in report.rows)
        return csv_response(list(RequestsRow.model_fields), rows, "requests")
    return report
