"""One trace from the gateway, through contacts and NATS, into the reports consumer."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crm_contacts.main import create_app as create_contacts
from crm_contacts.settings import ContactsSettings
from crm_gateway.main import create_app as create_gateway
from crm_gateway.settings import GatewaySettings
from crm_kernel.telemetry import add_span_processor
from crm_kernel.testing import TEST_JWT_SECRET, free_port, serve_in_process, wait_until
from crm_reports.main import create_app as create_reports
from crm_reports.settings import ReportsSettings


async def test_gateway_trace_reaches_the_reports_consumer(
    tmp_dir: Path, nats_url: str, databases
) -> None:  # type: ignore[no-untyped-def]
    common = {"NATS_URL": nats_url, "CRM_JWT_SECRET": TEST_JWT_SECRET, "CRM_DATA_DIR": tmp_dir}
    contacts_app = create_contacts(
        ContactsSettings(DATABASE_URL=await databases.create("contacts"), **common)
    )
    reports_app = create_reports(
        ReportsSettings(DATABASE_URL=await databases.create("reports"), **common)
    )
    exporter = InMemorySpanExporter()
    add_span_processor(SimpleSpanProcessor(exporter))
    contacts_port, reports_port = free_port(), free_port()
    async with (
        serve_in_process(contacts_app, contacts_port) as contacts_url,
        serve_in_process(reports_app, reports_port) as reports_url,
    ):
        gateway_app = create_gateway(
            GatewaySettings(
                DATABASE_URL=await databases.create("gateway"),
                CONTACTS_URL=contacts_url,
                REPORTS_URL=reports_url,
                CRM_ADMIN_EMAIL="admin@trace.test",
                CRM_ADMIN_PASSWORD="trace-admin-password",
                **common,
            )
        )
        async with serve_in_process(gateway_app) as gateway_url:
            async with httpx.AsyncClient(base_url=f"{gateway_url}/api/v1") as client:
                login = await client.post(
                    "/auth/login",
                    json={"email": "admin@trace.test", "password": "trace-admin-password"},
                )
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                exporter.clear()
                created = await client.post(
                    "/contacts", json={"first_name": "Trace"}, headers=headers
                )
                assert created.status_code == 201

                def consumer_spans() -> list:  # type: ignore[type-arg]
                    return [
                        s
                        for s in exporter.get_finished_spans()
                        if s.name == "process crm.contacts.contact.created"
                        and s.attributes.get("messaging.consumer.group.name") == "reports"
                    ]

                spans = await wait_until(consumer_spans, message="the reports consumer span")

    roots = [
        s
        for s in exporter.get_finished_spans()
        if s.parent is None and s.name.startswith("POST") and s.kind.name == "SERVER"
    ]
    assert len(roots) == 1, [(s.name, s.parent) for s in exporter.get_finished_spans()]
    trace_id = roots[0].context.trace_id
    assert spans[0].context.trace_id == trace_id
    # The contacts service's own server span is in the same trace (context crossed HTTP too).
    server_spans = [
        s
        for s in exporter.get_finished_spans()
        if s.kind.name == "SERVER" and s.context.trace_id == trace_id
    ]
    assert len(server_spans) >= 2
