"""The campaigns service: templates, campaigns with their send ledger, tracking, marketing events."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

import crm_campaigns
from crm_campaigns.campaigns.routes import router as campaigns_router
from crm_campaigns.campaigns.worker import start_workers
from crm_campaigns.consumers import handlers
from crm_campaigns.drips import scheduler as drip_scheduler
from crm_campaigns.drips import triggers as drip_triggers
from crm_campaigns.drips.routes import router as sequences_router
from crm_campaigns.events import consumers as event_consumers
from crm_campaigns.events.routes import public_router as public_events_router
from crm_campaigns.events.routes import router as events_router
from crm_campaigns.models import load_all_models
from crm_campaigns.settings import CampaignsSettings
from crm_campaigns.templates.routes import router as templates_router
from crm_campaigns.tracking.routes import router as tracking_router
from crm_kernel.app import create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve

load_all_models()

# Under /api/v1, behind the gateway's authentication.
ROUTERS: list[APIRouter] = [templates_router, campaigns_router, events_router, sequences_router]
# Unauthenticated `/public/...` endpoints the gateway forwards to (public-routes.md).
PUBLIC_ROUTERS: list[APIRouter] = [tracking_router, public_events_router]


def create_app(settings: CampaignsSettings | None = None) -> FastAPI:
    settings = settings or CampaignsSettings()
    app = create_service_app(
        settings,
        title="CRM campaigns",
        migrations=service_migrations(crm_campaigns.__file__),
        routers=ROUTERS,
        handlers=handlers,
        on_startup=[
            start_workers,
            event_consumers.start,
            drip_triggers.start,
            drip_scheduler.start,
        ],
    )
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    return app


def run() -> None:
    serve("crm_campaigns.main:create_app", CampaignsSettings())
