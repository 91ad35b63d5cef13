"""The notifications service: e-mail, SMS and in-app messages."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

import crm_notifications
from crm_kernel.app import Runtime, create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve
from crm_notifications.channels.select import mailer, sms_sender
from crm_notifications.notifications.dispatcher import Dispatcher
from crm_notifications.notifications.intake import build_handlers
from crm_notifications.notifications.routes import router as notifications_router
from crm_notifications.settings import NotificationsSettings


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    mail, sms = mailer(settings), sms_sender(settings)

    async def start_dispatchers(runtime: Runtime) -> None:
        for category, concurrency in (
            ("transactional", settings.transactional_concurrency),
            ("bulk", settings.bulk_concurrency),
        ):
            dispatcher = Dispatcher(
                runtime.db,
                mailer=mail,
                sms=sms,
                category=category,
                concurrency=concurrency,
                max_attempts=settings.max_attempts,
                base_delay=settings.retry_base_seconds,
                lease=timedelta(seconds=settings.lease_seconds),
            )
            runtime.spawn(dispatcher.run(), f"dispatch-{category}")

    async def close_channels(runtime: Runtime) -> None:
        close = getattr(mail, "close", None)
        if close is not None:
            await close()

    return create_service_app(
        settings,
        title="CRM notifications",
        migrations=service_migrations(crm_notifications.__file__),
        routers=[notifications_router],
        handlers=build_handlers(settings.sms_price_per_segment),
        on_startup=[start_dispatchers],
        on_shutdown=[close_channels],
    )


def run() -> None:
    serve("crm_notifications.main:create_app", NotificationsSettings())
