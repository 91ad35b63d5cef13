"""The reports service: analytics from read models built only from events."""

from __future__ import annotations

from fastapi import FastAPI

import crm_reports
from crm_kernel.app import create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve
from crm_reports.consumers import handlers
from crm_reports.funnel.routes import router as funnel_router
from crm_reports.managers.routes import router as managers_router
from crm_reports.overview.routes import router as overview_router
from crm_reports.rebuild import router as rebuild_router
from crm_reports.settings import ReportsSettings


def create_app(settings: ReportsSettings | None = None) -> FastAPI:
    settings = settings or ReportsSettings()
    return create_service_app(
        settings,
        title="CRM reports",
        migrations=service_migrations(crm_reports.__file__),
        routers=[overview_router, funnel_router, managers_router, rebuild_router],
        handlers=handlers,
    )


def run() -> None:
    serve("crm_reports.main:create_app", ReportsSettings())
