"""The notifications service: e-mail, SMS, in-app notices and webhooks."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

import crm_notifications
from crm_kernel.app import Runtime, create_service_app
from crm_kernel.consumer import Consumer
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve
from crm_notifications.channels.failover import close_channel
from crm_notifications.channels.select import mailer, sms_sender
from crm_notifications.notices.routes import router as notices_router
from crm_notifications.notifications.callbacks import router as callbacks_router
from crm_notifications.notifications.dispatcher import Dispatcher
from crm_notifications.notifications.intake import build_handlers
from crm_notifications.notifications.routes import router as notifications_router
from crm_notifications.preferences.routes import router as preferences_router
from crm_notifications.settings import NotificationsSettings
from crm_notifications.webhooks import fanout
from crm_notifications.webhooks.routes import router as webhooks_router
from crm_notifications.webhooks.sender import WebhookSender


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
                quiet_hours=settings.quiet_hours(),
                domain_rate=settings.email_domain_rate_per_second,
            )
            runtime.spawn(dispatcher.run(), f"dispatch-{category}")

    async def start_webhooks(runtime: Runtime) -> None:
        # A consumer of its own over every event stream, so webhook fan-out never
        # delays the service's own handlers (and vice versa).
        consumer = Consumer(
            runtime.db, runtime.bus, fanout.event_handlers(), max_deliveries=settings.max_deliveries
        )
        await consumer.ensure()
        runtime.consumers.append(consumer)
        runtime.spawn(consumer.run(), f"consumer-{fanout.CONSUMER_NAME}")
        sender = WebhookSender(
            runtime.db,
            allow_private=settings.webhooks_allow_private,
            concurrency=settings.webhook_concurrency,
            max_attempts=settings.webhook_max_attempts,
            base_delay=settings.webhook_retry_base_seconds,
            timeout=settings.webhook_timeout_seconds,
            retention=timedelta(days=settings.webhook_log_retention_days)
            if settings.webhook_log_retention_days
            else None,
        )
        runtime.spawn(sender.run(), "webhook-sender")

    async def close_channels(runtime: Runtime) -> None:
        for channel in (mail, sms):
            await close_channel(channel)

    app = create_service_app(
        settings,
        title="CRM notifications",
        migrations=service_migrations(crm_notifications.__file__),
        routers=[notifications_router, notices_router, webhooks_router, preferences_router],
        handlers=build_handlers(settings.sms_price_per_segment),
        on_startup=[start_dispatchers, start_webhooks],
        on_shutdown=[close_channels],
    )
    # Public callbacks sit outside /api/v1: the gateway forwards /public/... unchanged.
    app.include_router(callbacks_router)
    app.state.sms_sender = sms
    return app


def run() -> None:
    serve("crm_notifications.main:create_app", NotificationsSettings())
