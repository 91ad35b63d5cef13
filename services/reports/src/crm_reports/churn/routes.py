"""HTTP route of /reports/churn."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.churn import service
from crm_reports.churn.schemas import AtRisk, ChurnRead
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/churn", response_model=ChurnRead)
async def churn(
    principal: CurrentUser,
    db: DatabaseDep,
    filters: FiltersDep,
    request: Request,
    format: Format = Format.JSON,
) -> ChurnRead | Response:
    """Customers at risk as of `to` (default now)."""
    report = await service.churn(
        db=db,
        principal=principal,
        filters=filters,
        as_of=filters.period_to or datetime.now(UTC),
        default_days=request.app.state.settings.churn_default_interval_days,
    )
    if format is Format.CSV:
        rows = (r.model_dump(mode="json") for r in report.at_risk)
        return csv_response(list(AtRisk.model_fields), rows, "churn")
    return report
