"""HTTP route of /reports/forecast."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.forecast import service
from crm_reports.forecast.schemas import ForecastMonth, ForecastRead
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/forecast", response_model=ForecastRead)
async def forecast(
    principal: CurrentUser, db: DatabaseDep, filters: FiltersDep, format: Format = Format.JSON
) -> ForecastRead | Response:
    """Open deals by expected close month; `from`/`to` filter the expected close date."""
    report = await service.forecast(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        rows = (m.model_dump(mode="json") for m in report.months)
        return csv_response(list(ForecastMonth.model_fields), rows, "forecast")
    return report
