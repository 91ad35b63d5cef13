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


def require_zone(**bounds: datetime | None) -> None:
    """400 naming the bound that has no time zone (a period is compared with UTC times)."""
    for name, value in bounds.items():
        if value is not None and value.tzinfo is None:
            field = name.rstrip("_")
            raise BadRequest(
                f"`{field}` needs a time zone (e.g. 2026-01-01T00:00:00Z).",
                errors=[{"field": field, "location": "query", "message": "time zone required"}],
            )


@router.get("/overview", response_model=OverviewRead)
async def overview(
    principal: CurrentUser,
    db: DatabaseDep,
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> OverviewRead:
    require_zone(from_=period_from, to=period_to)
    return await service.overview(
        db=db, principal=principal, period_from=period_from, period_to=period_to
    )
