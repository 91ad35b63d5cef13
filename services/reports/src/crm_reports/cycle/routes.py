"""HTTP route of /reports/cycle."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.cycle import service
from crm_reports.cycle.schemas import CycleGroup, CycleRead
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/cycle", response_model=CycleRead)
async def cycle(
    principal: CurrentUser, db: DatabaseDep, filters: FiltersDep, format: Format = Format.JSON
) -> CycleRead | Response:
    """Days from creation to win of the deals won in the period (linear-interpolated percentiles)."""
    report = await service.cycle(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        rows = (g.model_dump(mode="json") for g in report.groups)
        return csv_response(list(CycleGroup.model_fields), rows, "cycle")
    return report
