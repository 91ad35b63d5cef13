"""Bulk SMS with consent, contact ids on delivery events, and a contact's erasure."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
from sqlalchemy import select

from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import Consent, ContactCreated, ContactErased, LeadReceived
from crm_kernel.contracts.notifications import SendBulkSms, SendEmail
from crm_kernel.db import Database
from crm_kernel.testing import issue_token, serve_in_process, wait_until
from crm_notifications.main import create_app
from crm_notifications.models import (
    Attempt,
    InAppNotice,
    Notification,
    Suppression,
    WebhookDelivery,
)
from crm_notifications.testing import WebhookEndpoint, events_on, settings_for


async def by_key(db: Database, key: str) -> Notification | None:
    async with db.session() as session:
        return (
            await session.execute(select(Notification).where(Notification.key == key))
        ).scalar_one_or_none()


async def test_erasure_suppresses_the_addresses_and_forgets_the_messages(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    contact_id = str(uuid.uuid4())
    settings = settings_for(db_url, nats_url, tmp_dir, CRM_WEBHOOKS_ALLOW_PRIVATE=True)
    async with (
        WebhookEndpoint() as endpoint,
        serve_in_process(create_app(settings)) as base_url,
        httpx.AsyncClient(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {issue_token('admin')}"},
        ) as api,
    ):
        created = await api.post(
            "/webhooks", json={"url": endpoint.url, "event_types": ["crm.contacts.contact.*"]}
        )
        assert created.status_code == 201
        await bus.publish(
            ContactCreated(
                id=contact_id,
                first_name="Ivan",
                email="Ivan@Example.com",
                phone="+79123456789",
                owner_id=str(uuid.uuid4()),
                consent=Consent(email=True, sms=True),
                version=1,
                created_at="2026-11-29T10:00:00+00:00",
                updated_at="2026-11-29T10:00:00+00:00",
            ).envelope()
        )
        await bus.publish(
            LeadReceived(
                id=str(uuid.uuid4()),
                contact_id=contact_id,
                is_new_contact=True,
                owner_id=str(uuid.uuid4()),
                source="web_form",
                message="Please call Ivan at +79123456789",
                received_at="2026-11-29T10:00:00+00:00",
            ).envelope()
        )
        await bus.publish(
            SendBulkSms(
                key="campaign:1:" + contact_id,
                to="+79123456789",
                text="Sale!",
                contact_id=contact_id,
                source_type="campaign",
                source_id="campaign-1",
            ).envelope()
        )
        await bus.publish(
            SendEmail(
                key="order:7",
                to="Ivan@Example.com",
                subject="Order",
                body_text="Paid",
                contact_id=contact_id,
            ).envelope()
        )

        async def both_sent() -> bool:
            rows = [await by_key(db, "campaign:1:" + contact_id), await by_key(db, "order:7")]
            return all(r is not None and r.status == "sent" for r in rows)

        await wait_until(both_sent, timeout=20, message="both sent")
        await wait_until(lambda: endpoint.received, timeout=20, message="the webhook delivery")
        # The order's own event, and the campaign SMS in a batch of bulk deliveries.
        await wait_until(
            lambda: _count(bus, "crm.notifications.delivery.sent", 1), message="the sent event"
        )
        await wait_until(
            lambda: _count(bus, "crm.notifications.delivery.batch", 1), message="the batch"
        )
        for subject in ("crm.notifications.delivery.sent", "crm.notifications.delivery.batch"):
            last = await bus.js.get_last_msg("CRM_NOTIFICATIONS", subject)
            data = json.loads(last.data)["data"]
            assert data.get("deliveries", [data])[0]["contact_id"] == contact_id
        sms = await by_key(db, "campaign:1:" + contact_id)
        assert sms is not None and sms.category == "bulk"

        await bus.publish(
            ContactErased(
                id=contact_id,
                erased_at="2026-11-29T11:00:00+00:00",
                email="Ivan@Example.com",
                phone="+79123456789",
            ).envelope()
        )

        async def suppressed() -> bool:
            async with db.session() as session:
                rows = (await session.execute(select(Suppression))).scalars().all()
            return {(r.channel, r.address, r.reason) for r in rows} == {
                ("email", "ivan@example.com", "erased"),
                ("sms", "+79123456789", "erased"),
            }

        await wait_until(suppressed, timeout=20, message="the erased addresses suppressed")
        async with db.session() as session:
            rows = (
                (await session.execute(select(Notification).order_by(Notification.key)))
                .scalars()
                .all()
            )
            details = (await session.execute(select(Attempt.detail))).scalars().all()
        assert {r.recipient for r in rows} == {"erased"}
        assert all(r.body_text == "" and r.subject is None for r in rows)
        assert {r.status for r in rows} == {"sent"}  # what happened is kept
        assert set(details) == {None}
        async with db.session() as session:
            bodies = (await session.execute(select(WebhookDelivery.body))).scalars().all()
            notices = (await session.execute(select(InAppNotice.body))).scalars().all()
        assert bodies and "{}" in bodies
        assert not [b for b in bodies if "Example.com" in b or "+79123456789" in b]
        assert notices == [""]

        # A later message to an erased address is never sent.
        await bus.publish(
            SendEmail(key="order:8", to="ivan@example.com", subject="x", body_text="y").envelope()
        )
        await wait_until(
            lambda: _status(db, "order:8", "suppressed"), timeout=20, message="suppressed"
        )


async def _count(bus: Bus, subject: str, count: int) -> bool:
    return await events_on(bus, subject) >= count


async def _status(db: Database, key: str, status: str) -> bool:
    row = await by_key(db, key)
    return row is not None and row.status == status
