"""HTTP route of /reports/stalled."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep
from crm_reports.stalled import service
from crm_reports.stalled.schemas import StalledDeal, StalledRead

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/stalled", response_model=StalledRead)
async def stalled(
    principal: CurrentUser, db: DatabaseDep, filters: FiltersDep, format: Format = Format.JSON
) -> StalledRead | Response:
    """Open deals stuck in their stage now (`from`/`to` do not apply)."""
    report = await service.stalled(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        rows = (d.model_dump(mode="json") for d in report.deals)
        return csv_response(list(StalledDeal.model_fields), rows, "stalled")
    return report
