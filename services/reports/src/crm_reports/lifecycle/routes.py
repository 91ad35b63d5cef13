"""HTTP route of /reports/lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Response

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.problems import BadRequest
from crm_reports.http import Format, csv_response
from crm_reports.lifecycle import service
from crm_reports.lifecycle.schemas import LifecycleRead
from crm_reports.lifecycle.service import Bucket
from crm_reports.scope import FiltersDep

router = APIRouter(prefix="/reports", tags=["reports"])

DEFAULT_SPAN = {Bucket.DAY: 30, Bucket.WEEK: 12 * 7, Bucket.MONTH: 365}


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone, or 400 naming `tz`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(
            f"Unknown time zone {name!r}.",
            errors=[{"field": "tz", "location": "query", "message": "unknown time zone"}],
        ) from None


@router.get("/lifecycle", response_model=LifecycleRead)
async def lifecycle(
    principal: CurrentUser,
    db: DatabaseDep,
    filters: FiltersDep,
    bucket: Bucket = Bucket.MONTH,
    tz: str = "UTC",
    format: Format = Format.JSON,
) -> LifecycleRead | Response:
    """Contacts per lifecycle stage at the end of each bucket (local calendar of `tz`).

    Without `from`/`to`: the last year by month, 12 weeks by week, 30 days by day.
    """
    zone = time_zone(tz)
    period_to = filters.period_to or datetime.now(UTC)
    period_from = filters.period_from or period_to - timedelta(days=DEFAULT_SPAN[bucket])
    report = await service.lifecycle(
        db=db,
        principal=principal,
        filters=filters,
        bucket=bucket,
        zone=zone,
        period_from=period_from,
        period_to=period_to,
    )
    if format is Format.CSV:
        rows = [
            {"bucket_start": b.bucket_start.isoformat(), "stage": stage, "contacts": n}
            for b in report.buckets
            for stage, n in b.stages.items()
        ]
        return csv_response(["bucket_start", "stage", "contacts"], rows, "lifecycle")
    return report
