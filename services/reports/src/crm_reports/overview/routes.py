"""HTTP route of /reports/overview."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.http import Format, csv_response
from crm_reports.overview import service
from crm_reports.overview.schemas import OverviewRead
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/overview", response_model=OverviewRead)
async def overview(
    principal: CurrentUser,
    db: DatabaseDep,
    filters: FiltersDep,
    format: Format = Format.JSON,
) -> OverviewRead | Response:
    report = await service.overview(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        return csv_response(["metric", "currency", "value"], _metric_rows(report), "overview")
    return report


def _metric_rows(report: OverviewRead) -> list[dict[str, object]]:
    """The overview as (metric, currency, value) rows."""
    rows: list[dict[str, object]] = [
        {"metric": name, "value": getattr(report, name)}
        for name in (
            "contacts",
            "contacts_created",
            "open_deals",
            "deals_created",
            "deals_won",
            "leads_received",
            "tasks_overdue",
            "campaigns_sent",
        )
    ]
    for total in report.open_pipeline:
        rows.append({"metric": "open_pipeline", "currency": total.currency, "value": total.amount})
        rows.append(
            {
                "metric": "open_pipeline_weighted",
                "currency": total.currency,
                "value": total.weighted,
            }
        )
    for total in report.won_amount:
        rows.append({"metric": "won_amount", "currency": total.currency, "value": total.amount})
    return rows
