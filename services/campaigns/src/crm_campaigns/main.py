"""The campaigns service: mailing campaigns and marketing events."""

from __future__ import annotations

from fastapi import FastAPI

import crm_campaigns
from crm_campaigns.settings import CampaignsSettings
from crm_kernel.app import create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve


def create_app(settings: CampaignsSettings | None = None) -> FastAPI:
    settings = settings or CampaignsSettings()
    return create_service_app(
        settings,
        title="CRM campaigns",
        migrations=service_migrations(crm_campaigns.__file__),
    )


def run() -> None:
    serve("crm_campaigns.main:create_app", CampaignsSettings())
