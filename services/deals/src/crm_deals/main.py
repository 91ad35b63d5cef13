"""The deals service: pipelines, deals with their stage history, the board, proposals, orders, automations."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, FastAPI

import crm_deals
from crm_deals.automations.routes import router as automations_router
from crm_deals.automations.stalled import new_holder, release_lease, run_stalled_checks
from crm_deals.board.routes import router as board_router
from crm_deals.consumers import build_handlers
from crm_deals.deals.routes import router as deals_router
from crm_deals.models import load_all_models
from crm_deals.orders.links import OrderLinks
from crm_deals.orders.routes import public_router as public_orders_router
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
log = logging.getLogger(__name__)

# Under /api/v1, behind the gateway's authentication.
ROUTERS: list[APIRouter] = [
    pipelines_router,
    board_router,
    deals_router,
    products_router,
    proposals_router,
    orders_router,
    automations_router,
]
# Unauthenticated `/public/...` endpoints the gateway forwards to (public-routes.md).
PUBLIC_ROUTERS: list[APIRouter] = [public_orders_router]


def _order_links(settings: DealsSettings) -> OrderLinks | None:
    try:
        return OrderLinks(settings)
    except ValueError:
        log.warning("no CRM_SIGNING_SECRET or CRM_JWT_SECRET: order-status links are off")
        return None


def create_app(settings: DealsSettings | None = None) -> FastAPI:
    settings = settings or DealsSettings()
    # This replica's name on the stalled-check lease.
    holder = new_holder()

    async def default_pipeline(runtime: Runtime) -> None:
        await ensure_default_pipeline(runtime.db, locale=settings.locale)

    async def start_stalled_checks(runtime: Runtime) -> None:
        runtime.spawn(
            run_stalled_checks(runtime.db, holder, settings.stalled_check_seconds),
            "stalled-deals",
        )

    async def give_up_lease(runtime: Runtime) -> None:
        # The loop stops first: it could otherwise take the lease again after the release.
        for task in runtime.tasks:
            if task.get_name() == "stalled-deals":
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await release_lease(runtime.db, holder)

    app = create_service_app(
        settings,
        title="CRM deals",
        migrations=service_migrations(crm_deals.__file__),
        routers=ROUTERS,
        handlers=build_handlers(settings),
        on_startup=[default_pipeline, start_stalled_checks],
        on_shutdown=[give_up_lease],
    )
    app.state.order_links = _order_links(settings)
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    return app


def run() -> None:
    serve("crm_deals.main:create_app", DealsSettings())
