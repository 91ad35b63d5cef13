"""The deals service: pipelines, deals with their stage history, the board, proposals, orders."""

from __future__ import annotations

from fastapi import FastAPI

import crm_deals
from crm_deals.board.routes import router as board_router
from crm_deals.consumers import handlers
from crm_deals.deals.routes import router as deals_router
from crm_deals.models import load_all_models
from crm_deals.orders.routes import router as orders_router
from crm_deals.pipelines.routes import router as pipelines_router
from crm_deals.pipelines.service import ensure_default_pipeline
from crm_deals.products.routes import router as products_router
from crm_deals.proposals.routes import router as proposals_router
from crm_deals.settings import DealsSettings
from crm_kernel.app import Runtime, create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve

load_all_models()


def create_app(settings: DealsSettings | None = None) -> FastAPI:
    settings = settings or DealsSettings()

    async def default_pipeline(runtime: Runtime) -> None:
        await ensure_default_pipeline(runtime.db, locale=settings.locale)

    return create_service_app(
        settings,
        title="CRM deals",
        migrations=service_migrations(crm_deals.__file__),
        routers=[
            pipelines_router,
            board_router,
            deals_router,
            products_router,
            proposals_router,
            orders_router,
        ],
        handlers=handlers,
        on_startup=[default_pipeline],
    )


def run() -> None:
    serve("crm_deals.main:create_app", DealsSettings())
