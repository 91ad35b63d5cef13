"""The notifications service: e-mail, SMS and in-app messages."""

from __future__ import annotations

from fastapi import FastAPI

import crm_notifications
from crm_kernel.app import create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve
from crm_notifications.channels.select import mailer, sms_sender
from crm_notifications.consumers import build_handlers
from crm_notifications.settings import NotificationsSettings


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    return create_service_app(
        settings,
        title="CRM notifications",
        migrations=service_migrations(crm_notifications.__file__),
        handlers=build_handlers(mailer(settings), sms_sender(settings)),
    )


def run() -> None:
    serve("crm_notifications.main:create_app", NotificationsSettings())
