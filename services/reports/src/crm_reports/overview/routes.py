"""HTTP route of /reports/overview."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.problems import BadRequest
from crm_reports.overview import service
from crm_reports.overview.schemas import OverviewRead

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/overview", response_model=OverviewRead)
async def overview(
    principal: CurrentUser,
    db: DatabaseDep,
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> OverviewRead:
    for name, value in (("from", period_from), ("to", period_to)):
        if value is not None and value.tzinfo is None:
            raise BadRequest(
                f"`{name}` needs a time zone (e.g. 2026-01-01T00:00:00Z).",
                errors=[{"field": name, "location": "query", "message": "time zone required"}],
            )
    return await service.overview(
        db=db, principal=principal, period_from=period_from, period_to=period_to
    )
