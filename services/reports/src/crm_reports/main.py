"""The reports service: analytics from read models built only from events."""

from __future__ import annotations

from typing import cast

from fastapi import FastAPI

import crm_reports
from crm_kernel.app import Runtime, create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve
from crm_reports import freshness
from crm_reports.campaigns.routes import router as campaigns_router
from crm_reports.churn.routes import router as churn_router
from crm_reports.consumers import handlers
from crm_reports.cycle.routes import router as cycle_router
from crm_reports.events.routes import router as events_router
from crm_reports.forecast.routes import router as forecast_router
from crm_reports.funnel.routes import router as funnel_router
from crm_reports.kpis.routes import router as kpis_router
from crm_reports.lifecycle.routes import router as lifecycle_router
from crm_reports.managers.routes import router as managers_router
from crm_reports.overview.routes import router as overview_router
from crm_reports.rebuild import router as rebuild_router
from crm_reports.requests.routes import router as requests_router
from crm_reports.scoring.routes import router as scoring_router
from crm_reports.scoring.service import scoring_loop
from crm_reports.settings import ReportsSettings
from crm_reports.stalled.routes import router as stalled_router
from crm_reports.weekly.routes import router as weekly_router
from crm_reports.weekly.schedule import Weekly
from crm_reports.weekly.service import weekly_loop


async def start_jobs(runtime: Runtime) -> None:
    """The periodic jobs; each claims its run in the database, so every replica may run them."""
    if cast(ReportsSettings, runtime.settings).scoring_interval_seconds > 0:
        runtime.spawn(scoring_loop(runtime), "contact-scoring")
    runtime.spawn(weekly_loop(runtime), "weekly-report")


def create_app(settings: ReportsSettings | None = None) -> FastAPI:
    settings = settings or ReportsSettings()
    # A wrong schedule or zone stops the start, not the first Monday.
    Weekly.parse(settings.weekly_report_at, settings.report_time_zone)
    freshness.setup_metrics(settings.service_name, settings.otlp_endpoint)
    return create_service_app(
        settings,
        title="CRM reports",
        migrations=service_migrations(crm_reports.__file__),
        routers=[
            overview_router,
            funnel_router,
            managers_router,
            cycle_router,
            forecast_router,
            stalled_router,
            campaigns_router,
            events_router,
            scoring_router,
            lifecycle_router,
            churn_router,
            requests_router,
            kpis_router,
            weekly_router,
            rebuild_router,
        ],
        handlers=handlers,
        on_startup=[start_jobs],
        details={"freshness": freshness.details},
    )


def run() -> None:
    serve("crm_reports.main:create_app", ReportsSettings())
