"""Invitation campaigns: a campaign naming a marketing event sends each recipient their own
registration link, and every recipient sent becomes an invited participant of the event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from crm_campaigns.campaigns.models import Campaign
from crm_campaigns.testing import (
    FakeNotifications,
    audience_of,
    campaign_action,
    create_campaign,
    create_template,
    new_user,
)
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.db import Database
from crm_kernel.testing import wait_until

INVITATION = {
    "name": "Invitation",
    "subject": "{{ event.name }} for {{ contact.first_name }}",
    "body_html": '<p>{{ event.place }}</p><a href="{{ event.registration_url }}">Register</a>',
    "body_text": "Register: {{ event.registration_url }}",
}


async def _stats(api: httpx.AsyncClient, headers: dict[str, str], event_id: str) -> Any:
    response = await api.get(f"/events/{event_id}/stats", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_invitation_campaign_sends_registration_links_and_invites_its_recipients(
    api: httpx.AsyncClient, bus: Bus, db: Database, nats_url: str
) -> None:
    marketer = new_user(Role.MARKETER)
    starts = datetime.now(UTC) + timedelta(days=3)
    created = await api.post(
        "/events",
        json={
            "name": "Webinar",
            "kind": "webinar",
            "starts_at": starts.isoformat(),
            "place": "Zoom",
        },
        headers=marketer.headers,
    )
    assert created.status_code == 201, created.text
    event = created.json()
    segment_id, contacts = await audience_of(bus, db, 5)
    template = await create_template(api, marketer, **INVITATION)

    # The event must exist, and only an invitation may use `event`.
    for fields, message in (
        ({"marketing_event_id": str(uuid.uuid4())}, "unknown event"),
        ({}, "the template uses `event`: name the marketing event"),
    ):
        refused = await api.post(
            "/campaigns",
            json={"name": "Bad", "template_id": template["id"], "segment_ids": [segment_id]}
            | fields,
            headers=marketer.headers,
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["field"] == "marketing_event_id"
        assert refused.json()["errors"][0]["message"] == message

    campaign = await create_campaign(
        api,
        marketer,
        template_id=template["id"],
        segment_ids=[segment_id],
        marketing_event_id=event["id"],
    )
    assert campaign["marketing_event_id"] == event["id"]
    notifications = FakeNotifications(nats_url)
    async with notifications.running():
        await campaign_action(api, marketer, campaign["id"], "send")

        async def sent() -> bool:
            async with db.session() as session:
                status = await session.scalar(
                    select(Campaign.status).where(Campaign.id == campaign["id"])
                )
            return status == "sent"

        await wait_until(sent, timeout=60, message="campaign sent")

    by_contact = {c["contact_id"]: c for c in notifications.commands}
    assert set(by_contact) == {c.id for c in contacts}
    links = set()
    for contact in contacts:
        command = by_contact[contact.id]
        assert command["subject"] == f"Webinar for {contact.first_name}"
        assert "<p>Zoom</p>" in command["body_html"]
        link = command["body_text"].removeprefix("Register: ")
        assert link.startswith("http://127.0.0.1:8000/public/e/")
        links.add(link)
    assert len(links) == 5  # one signed link per recipient

    # Each recipient sent is on the event's list as invited (the message.sent facts).
    async def invited() -> Any:
        stats = await _stats(api, marketer.headers, event["id"])
        return stats if stats["invited"] == 5 else None

    await wait_until(invited, timeout=30, message="recipients invited")
    root = str(api.base_url).removesuffix("/").removesuffix("/api/v1")
    token = by_contact[contacts[0].id]["body_text"].rsplit("/", 1)[1]
    page = await api.get(f"{root}/public/events/{token}")
    assert page.status_code == 200, page.text
    assert page.json()["name"] == "Webinar"
    registered = await api.post(f"{root}/public/events/{token}/register")
    assert registered.status_code == 200, registered.text
    participants = await api.get(f"/events/{event['id']}/participants", headers=marketer.headers)
    assert participants.status_code == 200, participants.text
    statuses = {p["contact_id"]: p["status"] for p in participants.json()["items"]}
    assert statuses == {c.id: "invited" for c in contacts} | {contacts[0].id: "registered"}
    stats = await _stats(api, marketer.headers, event["id"])
    assert (stats["invited"], stats["registered"]) == (5, 1)
