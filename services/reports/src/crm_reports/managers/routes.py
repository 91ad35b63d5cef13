"""HTTP route of /reports/managers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.http import Format, csv_response, require_zone
from crm_reports.managers import service
from crm_reports.managers.schemas import ManagersRead

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/managers", response_model=ManagersRead)
async def managers(
    principal: CurrentUser,
    db: DatabaseDep,
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
    format: Format = Format.JSON,
) -> ManagersRead | Response:
    require_zone(from_=period_from, to=period_to)
    report = await service.managers(
        db=db, principal=principal, period_from=period_from, period_to=period_to
    )
    if format is Format.CSV:
        columns = [
            "owner_id",
            "deals_created",
            "deals_won",
            "deals_lost",
            "win_rate",
            "currency",
            "revenue_won",
            "average_deal_size",
            "median_cycle_days",
        ]
        return csv_response(columns, _rows(report), "managers")
    return report


def _rows(report: ManagersRead) -> list[dict[str, object]]:
    """One row per manager and currency of revenue (one row without revenue)."""
    rows: list[dict[str, object]] = []
    for m in report.managers:
        base = m.model_dump(mode="json", exclude={"revenue_won", "average_deal_size"})
        sizes = {t.currency: t.amount for t in m.average_deal_size}
        rows += [
            {
                **base,
                "currency": t.currency,
                "revenue_won": t.amount,
                "average_deal_size": sizes[t.currency],
            }
            for t in m.revenue_won
        ] or [base]
    return rows
