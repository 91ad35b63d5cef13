"""The contacts service: the protected client base."""

from __future__ import annotations

from fastapi import FastAPI

import crm_contacts
from crm_contacts.activities.routes import router as activities_router
from crm_contacts.activities.routes import timeline_router
from crm_contacts.audit.routes import router as audit_router
from crm_contacts.companies.routes import router as companies_router
from crm_contacts.contacts.routes import router as contacts_router
from crm_contacts.requests.routes import router as requests_router
from crm_contacts.settings import ContactsSettings
from crm_contacts.tasks import scheduler
from crm_contacts.tasks.routes import router as tasks_router
from crm_kernel.app import create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve


def create_app(settings: ContactsSettings | None = None) -> FastAPI:
    settings = settings or ContactsSettings()
    return create_service_app(
        settings,
        title="CRM contacts",
        migrations=service_migrations(crm_contacts.__file__),
        routers=[
            contacts_router,
            timeline_router,
            companies_router,
            activities_router,
            requests_router,
            tasks_router,
            audit_router,
        ],
        on_startup=[scheduler.start],
    )


def run() -> None:
    serve("crm_contacts.main:create_app", ContactsSettings())
