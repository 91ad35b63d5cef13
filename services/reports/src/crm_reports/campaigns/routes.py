"""HTTP route of /reports/campaigns."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.campaigns import service
from crm_reports.campaigns.schemas import CampaignsRead, Figures
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])

COLUMNS = [
    "campaign_id",
    "name",
    "variant_id",
    "variant",
    "audience",
    "sent",
    "delivered",
    "failed",
    "bounced",
    "complained",
    "opened",
    "opens_total",
    "clicked",
    "unsubscribed",
    "response_rate",
    "deals_created",
    "deals_won",
    "revenue",
    "cost",
    "roi",
]


@router.get("/campaigns", response_model=CampaignsRead)
async def campaigns(
    principal: CurrentUser, db: DatabaseDep, filters: FiltersDep, format: Format = Format.JSON
) -> CampaignsRead | Response:
    """Campaigns started in the period: one line per campaign and per variant."""
    report = await service.campaigns(db=db, principal=principal, filters=filters)
    if format is Format.CSV:
        return csv_response(COLUMNS, _rows(report), "campaigns")
    return report


def _rows(report: CampaignsRead) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for c in report.campaigns:
        head = {"campaign_id": c.campaign_id, "name": c.name}
        cost = f"{c.cost.amount} {c.cost.currency}" if c.cost else None
        lines: list[tuple[Figures, dict[str, object]]] = [(c, {"cost": cost, "roi": c.roi})]
        lines += [(v, {"variant_id": v.variant_id, "variant": v.name}) for v in c.variants]
        for line, extra in lines:
            data = line.model_dump(mode="json", exclude={"variants", "cost", "roi"})
            data["revenue"] = " ".join(f"{t.amount} {t.currency}" for t in line.revenue)
            rows.append({**data, **head, **extra})
    return rows
