"""HTTP route of /reports/funnel."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.problems import BadRequest
from crm_reports.funnel import service
from crm_reports.funnel.schemas import FunnelRead, FunnelStage
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/funnel", response_model=FunnelRead)
async def funnel(
    principal: CurrentUser,
    db: DatabaseDep,
    filters: FiltersDep,
    format: Format = Format.JSON,
) -> FunnelRead | Response:
    """Per stage of the pipeline (`pipeline_id` required); the period filters stays by entry time."""
    if not filters.pipeline_id:
        raise BadRequest(
            "`pipeline_id` is required.",
            errors=[{"field": "pipeline_id", "location": "query", "message": "required"}],
        )
    report = await service.funnel(
        db=db, principal=principal, pipeline_id=filters.pipeline_id, filters=filters
    )
    if format is Format.CSV:
        columns = list(FunnelStage.model_fields)
        return csv_response(columns, (s.model_dump(mode="json") for s in report.stages), "funnel")
    return report
