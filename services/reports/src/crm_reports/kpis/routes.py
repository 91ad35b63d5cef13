"""HTTP route of /reports/kpis."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.http import Format, csv_response
from crm_reports.kpis import service
from crm_reports.kpis.schemas import Kpi, KpisRead
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/kpis", response_model=KpisRead)
async def kpis(
    principal: CurrentUser, db: DatabaseDep, filters: FiltersDep, format: Format = Format.JSON
) -> KpisRead | Response:
    """Headline indicators for `from`..`to` (both required) and the period before."""
    report = await service.kpis(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        rows = (k.model_dump(mode="json") for k in report.kpis)
        return csv_response(list(Kpi.model_fields), rows, "kpis")
    return report
