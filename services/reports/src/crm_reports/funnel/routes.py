"""HTTP route of /reports/funnel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.funnel import service
from crm_reports.funnel.schemas import FunnelRead, FunnelStage
from crm_reports.http import Format, csv_response, require_zone

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/funnel", response_model=FunnelRead)
async def funnel(
    principal: CurrentUser,
    db: DatabaseDep,
    pipeline_id: uuid.UUID,
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
    owner_id: uuid.UUID | None = None,
    format: Format = Format.JSON,
) -> FunnelRead | Response:
    require_zone(from_=period_from, to=period_to)
    report = await service.funnel(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        period_from=period_from,
        period_to=period_to,
        owner_id=str(owner_id) if owner_id else None,
    )
    if format is Format.CSV:
        columns = list(FunnelStage.model_fields)
        return csv_response(columns, (s.model_dump(mode="json") for s in report.stages), "funnel")
    return report
