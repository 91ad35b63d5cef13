"""HTTP route of /reports/managers."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.http import Format, csv_response
from crm_reports.managers import service
from crm_reports.managers.schemas import ManagersRead
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])

COLUMNS = [
    "owner_id",
    "deals_created",
    "deals_won",
    "deals_lost",
    "win_rate",
    "currency",
    "revenue_won",
    "average_deal_size",
    "median_cycle_days",
    "activities",
    "overdue_tasks",
    "expected_wins",
    "wins_vs_expected",
    "mix_adjusted_win_rate",
]


@router.get("/managers", response_model=ManagersRead)
async def managers(
    principal: CurrentUser, db: DatabaseDep, filters: FiltersDep, format: Format = Format.JSON
) -> ManagersRead | Response:
    report = await service.managers(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        return csv_response(COLUMNS, manager_rows(report), "managers")
    return report


def manager_rows(report: ManagersRead) -> list[dict[str, object]]:
    """One row per manager and currency of revenue (one row without revenue)."""
    rows: list[dict[str, object]] = []
    for m in report.managers:
        base = m.model_dump(mode="json", exclude={"revenue_won", "average_deal_size"})
        base["activities"] = " ".join(f"{k}={v}" for k, v in sorted(m.activities.items()))
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
