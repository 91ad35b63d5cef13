"""HTTP routes of /reports/rfm and /reports/clv."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_reports.http import Format, csv_response
from crm_reports.scope import FiltersDep
from crm_reports.scoring.schemas import ClvRead, ClvRow, RfmRead, RfmRow
from crm_reports.scoring.service import segments, visible_scores

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/rfm", response_model=RfmRead)
async def rfm(
    principal: CurrentUser,
    db: DatabaseDep,
    filters: FiltersDep,
    request: Request,
    format: Format = Format.JSON,
) -> RfmRead | Response:
    """Recency, frequency and monetary scores (1-5) per customer as of `to` (default now)."""
    as_of = filters.period_to or datetime.now(UTC)
    scores = await visible_scores(
        db=db,
        principal=principal,
        filters=filters,
        as_of=as_of,
        horizon_years=request.app.state.settings.clv_horizon_years,
    )
    rows = [
        RfmRow(
            contact_id=s.contact_id,
            owner_id=owner,
            recency=s.recency,
            frequency=s.frequency,
            monetary=s.monetary,
            rfm_group=s.rfm_group,
            deals_won=s.deals_won,
            last_won_at=s.last_won_at,
        )
        for owner, s in scores
    ]
    if format is Format.CSV:
        return csv_response(
            list(RfmRow.model_fields), (r.model_dump(mode="json") for r in rows), "rfm"
        )
    return RfmRead(as_of=as_of, segments=segments(scores), customers=rows)


@router.get("/clv", response_model=ClvRead)
async def clv(
    principal: CurrentUser,
    db: DatabaseDep,
    filters: FiltersDep,
    request: Request,
    format: Format = Format.JSON,
) -> ClvRead | Response:
    """Revenue to date and predicted lifetime value per customer, highest first."""
    as_of = filters.period_to or datetime.now(UTC)
    horizon = request.app.state.settings.clv_horizon_years
    scores = await visible_scores(
        db=db, principal=principal, filters=filters, as_of=as_of, horizon_years=horizon
    )
    rows = [
        ClvRow(
            contact_id=s.contact_id,
            owner_id=owner,
            rfm_group=s.rfm_group,
            currency=s.currency,
            revenue_to_date=str(s.revenue_to_date),
            predicted_clv=str(s.predicted_clv),
        )
        for owner, s in scores
    ]
    if format is Format.CSV:
        return csv_response(
            list(ClvRow.model_fields), (r.model_dump(mode="json") for r in rows), "clv"
        )
    return ClvRead(as_of=as_of, horizon_years=horizon, segments=segments(scores), customers=rows)
