"""HTTP route of /reports/scheduled/send-now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from fastapi import APIRouter, Request

from crm_kernel.app import runtime_of
from crm_kernel.auth import AdminUser
from crm_reports.settings import ReportsSettings
from crm_reports.weekly.schedule import Weekly
from crm_reports.weekly.service import send_now

router = APIRouter(prefix="/reports", tags=["reports"])


@router.post("/scheduled/send-now", status_code=202)
async def send_weekly_now(_: AdminUser, request: Request) -> dict[str, int]:
    """Admins: mail last week's report to every head of sales now."""
    runtime = runtime_of(request)
    settings = cast(ReportsSettings, runtime.settings)
    weekly = Weekly.parse(settings.weekly_report_at, settings.report_time_zone)
    return {"sent": await send_now(runtime.db, weekly, datetime.now(UTC))}
