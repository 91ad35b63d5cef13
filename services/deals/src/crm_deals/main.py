"""The deals service: pipelines, deals, proposals and orders."""

from __future__ import annotations

from fastapi import FastAPI

import crm_deals
from crm_deals.settings import DealsSettings
from crm_kernel.app import create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve


def create_app(settings: DealsSettings | None = None) -> FastAPI:
    settings = settings or DealsSettings()
    return create_service_app(
        settings,
        title="CRM deals",
        migrations=service_migrations(crm_deals.__file__),
    )


def run() -> None:
    serve("crm_deals.main:create_app", DealsSettings())
