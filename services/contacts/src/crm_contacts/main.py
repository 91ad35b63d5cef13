"""The contacts service: the protected client base."""

from __future__ import annotations

from fastapi import FastAPI

import crm_contacts
from crm_contacts.activities.routes import router as activities_router
from crm_contacts.activities.routes import timeline_router
from crm_contacts.audit.routes import router as audit_router
from crm_contacts.companies.routes import router as companies_router
from crm_contacts.consumers import build_handlers
from crm_contacts.contacts.routes import router as contacts_router
from crm_contacts.custom_fields.routes import router as custom_fields_router
from crm_contacts.exports import retention as export_retention
from crm_contacts.exports.routes import router as exports_router
from crm_contacts.imports import worker as import_worker
from crm_contacts.imports.routes import router as imports_router
from crm_contacts.leads.routes import public_router as public_forms_router
from crm_contacts.leads.routes import router as leads_router
from crm_contacts.leads.routes import rules_router as lead_rules_router
from crm_contacts.requests.routes import router as requests_router
from crm_contacts.segments.routes import router as segments_router
from crm_contacts.settings import ContactsSettings
from crm_contacts.tasks import scheduler
from crm_contacts.tasks.routes import router as tasks_router
from crm_kernel.app import create_service_app
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve


def create_app(settings: ContactsSettings | None = None) -> FastAPI:
    settings = settings or ContactsSettings()
    app = create_service_app(
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
            custom_fields_router,
            segments_router,
            leads_router,
            lead_rules_router,
            imports_router,
            exports_router,
        ],
        handlers=build_handlers(),
        on_startup=[scheduler.start, import_worker.start, export_retention.start],
    )
    # Unauthenticated, outside /api/v1: the gateway forwards public web forms here.
    app.include_router(public_forms_router)
    return app


def run() -> None:
    serve("crm_contacts.main:create_app", ContactsSettings())
