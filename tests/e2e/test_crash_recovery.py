"""A crash between commit and publish loses nothing and applies nothing twice."""

from __future__ import annotations

import asyncio

import httpx
import nats

from e2e_helpers import login, wait_for
from stack import Stack


def stream_messages(nats_url: str, subject: str) -> int:
    async def count() -> int:
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().stream_info("CRM_CONTACTS", subjects_filter=subject)
            return int((info.state.subjects or {}).get(subject, 0))
        finally:
            await nc.close()

    return asyncio.run(count())


def test_kill_after_commit_before_relay_publishes_once_after_restart(
    stack: Stack, gateway: httpx.Client
) -> None:
    headers = login(gateway)
    # The contacts service runs without its relay: the commit lands, nothing is published.
    stack.stop_service("contacts")
    stack.start_service("contacts", {"CRM_OUTBOX_RELAY": "false"})
    stack.wait_healthy("contacts")
    created = gateway.post("/contacts", json={"first_name": "Crash"}, headers=headers)
    assert created.status_code == 201
    assert stream_messages(stack.nats_url, "crm.contacts.contact.created") == 0

    stack.stop_service("contacts", kill=True)  # kill -9
    stack.start_service("contacts")
    stack.wait_healthy("contacts")

    wait_for(
        lambda: gateway.get("/reports/overview", headers=headers).json()["contacts"] == 1,
        message="the event to reach reports after the restart",
    )
    assert stream_messages(stack.nats_url, "crm.contacts.contact.created") == 1
    # A second restart publishes nothing again and reports still count it once.
    stack.stop_service("contacts", kill=True)
    stack.start_service("contacts")
    stack.wait_healthy("contacts")
    assert gateway.get(f"/contacts/{created.json()['id']}", headers=headers).status_code == 200
    assert stream_messages(stack.nats_url, "crm.contacts.contact.created") == 1
    assert gateway.get("/reports/overview", headers=headers).json()["contacts"] == 1


def test_reports_killed_mid_stream_counts_every_contact_once(
    stack: Stack, gateway: httpx.Client
) -> None:
    headers = login(gateway)
    ids = []
    for i in range(30):
        if i == 10:
            stack.stop_service("reports", kill=True)
        ids.append(
            gateway.post("/contacts", json={"first_name": f"N{i}"}, headers=headers).json()["id"]
        )
    stack.start_service("reports")
    stack.wait_healthy("reports")
    # A message the killed process had fetched comes back after the consumer's ack_wait (10 s).
    wait_for(
        lambda: gateway.get("/reports/overview", headers=headers).json()["contacts"] == 30,
        timeout=40,
        message="all 30 contacts counted",
    )
    assert len(set(ids)) == 30
