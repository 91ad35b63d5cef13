"""Webhooks: signed POSTs of matching events, retried and logged, replayable; internal targets refused."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from sqlalchemy import select

from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactCreated, TaskOverdue
from crm_kernel.contracts.notifications import SendWebhook
from crm_kernel.db import Database
from crm_kernel.tables import inbox
from crm_kernel.testing import issue_token, serve_in_process, wait_until
from crm_notifications.main import create_app
from crm_notifications.models import WebhookAttempt, WebhookDelivery
from crm_notifications.testing import WebhookEndpoint, settings_for
from crm_notifications.webhooks import fanout, signature
from crm_notifications.webhooks.sender import Job, WebhookSender
from crm_notifications.webhooks.targets import TargetRefused, check_target


def admin_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{base_url}/api/v1",
        headers={"Authorization": f"Bearer {issue_token('admin')}"},
        timeout=30,
    )


def contact_created() -> ContactCreated:
    return ContactCreated(
        id=str(uuid.uuid4()),
        first_name="Anna",
        email="anna@example.com",
        owner_id=str(uuid.uuid4()),
        version=1,
        created_at="2026-11-29T10:00:00+00:00",
        updated_at="2026-11-29T10:00:00+00:00",
    )


def task_overdue() -> TaskOverdue:
    """An event of the contacts stream that a `crm.contacts.contact.*` filter does not take."""
    return TaskOverdue(
        id=str(uuid.uuid4()),
        title="Call",
        due_at="2026-11-29T10:00:00+00:00",
        assignee_id=str(uuid.uuid4()),
        status="open",
        version=1,
        created_at="2026-11-29T09:00:00+00:00",
        updated_at="2026-11-29T09:00:00+00:00",
    )


async def test_matching_events_are_signed_retried_logged_and_replayed(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    settings = settings_for(
        db_url,
        nats_url,
        tmp_dir,
        CRM_WEBHOOKS_ALLOW_PRIVATE=True,
        CRM_WEBHOOK_RETRY_BASE_SECONDS=0.1,
    )
    async with (
        WebhookEndpoint(fail_first=2) as endpoint,
        serve_in_process(create_app(settings)) as base_url,
        admin_client(base_url) as api,
    ):
        created = await api.post(
            "/webhooks",
            json={"url": endpoint.url, "event_types": ["crm.contacts.contact.*", "crm.erp.*"]},
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        secret = hook["secret"]
        assert "secret" not in (await api.get(f"/webhooks/{hook['id']}")).json()

        contact = contact_created().envelope()
        await bus.publish(contact)
        # Not matching the filter: never delivered.
        await bus.publish(task_overdue().envelope())
        await wait_until(lambda: endpoint.received, timeout=30, message="the webhook delivery")
        headers, body = endpoint.received[0]
        assert headers["X-CRM-Event-Id"] == contact.id
        assert headers["X-CRM-Event-Type"] == "crm.contacts.contact.created"
        assert signature.verify(secret, headers["X-CRM-Signature"], body)
        assert not signature.verify("another-secret-0123456789", headers["X-CRM-Signature"], body)
        assert not signature.verify(secret, headers["X-CRM-Signature"], body + b" ")
        sent = orjson.loads(body)
        assert sent["id"] == contact.id and sent["data"]["first_name"] == "Anna"

        async def succeeded() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = (
                await api.get(f"/webhooks/{hook['id']}/deliveries", params={"status": "succeeded"})
            ).json()["items"]
            return items

        log = await wait_until(succeeded, message="the delivery recorded")
        assert len(log) == 1
        delivery = log[0]
        assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 204]

        replay = await api.post(f"/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay")
        assert replay.status_code == 202
        await wait_until(lambda: len(endpoint.received) == 2, timeout=20, message="the replay")
        assert endpoint.received[1][0]["X-CRM-Event-Id"] == contact.id
        assert endpoint.received[1][1] == body

        # A command from another service: delivered to matching subscriptions.
        await bus.publish(
            SendWebhook(
                key="erp-sync:42", event_type="crm.erp.order_synced", payload={"n": 42}
            ).envelope()
        )
        await wait_until(lambda: len(endpoint.received) == 3, timeout=20, message="the command")
        assert endpoint.received[2][0]["X-CRM-Event-Id"] == "erp-sync:42"
        assert orjson.loads(endpoint.received[2][1])["data"] == {"n": 42}

        log = (await api.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]
        assert sorted(d["event_type"] for d in log) == [
            "crm.contacts.contact.created",
            "crm.erp.order_synced",
        ]
        unknown = await api.post(f"/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/replay")
        assert unknown.status_code == 404
        assert (await api.delete(f"/webhooks/{hook['id']}")).status_code == 204
        assert (await api.get(f"/webhooks/{hook['id']}")).status_code == 404


async def test_only_wanted_events_are_recorded_and_a_redelivery_is_one_delivery(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir, CRM_WEBHOOKS_ALLOW_PRIVATE=True)
    async with (
        WebhookEndpoint() as endpoint,
        serve_in_process(create_app(settings)) as base_url,
        admin_client(base_url) as api,
    ):
        created = await api.post(
            "/webhooks", json={"url": endpoint.url, "event_types": ["crm.contacts.contact.*"]}
        )
        assert created.status_code == 201, created.text
        # Same stream, published first: handled before (or with) the contact.
        await bus.publish(task_overdue().envelope())
        contact = contact_created().envelope()
        await bus.publish(contact)
        await wait_until(lambda: endpoint.received, timeout=30, message="the webhook delivery")

        # Events no subscription wants leave no inbox row; one that arrives
        # again is one delivery (the unique subscription and event id pair).
        async with db.transaction() as session:
            await fanout.fan_out(session, [contact])
        async with db.session() as session:
            deliveries = (
                await session.scalars(
                    select(WebhookDelivery.id).where(WebhookDelivery.event_id == contact.id)
                )
            ).all()
            inbox_rows = (
                await session.scalars(
                    select(inbox.c.event_id).where(inbox.c.consumer == fanout.CONSUMER_NAME)
                )
            ).all()
        assert len(deliveries) == 1
        assert inbox_rows == [contact.id]


async def test_failing_endpoint_is_retried_then_failed_in_the_log(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    settings = settings_for(
        db_url,
        nats_url,
        tmp_dir,
        CRM_WEBHOOKS_ALLOW_PRIVATE=True,
        CRM_WEBHOOK_RETRY_BASE_SECONDS=0.05,
        CRM_WEBHOOK_MAX_ATTEMPTS=3,
    )
    async with (
        WebhookEndpoint(fail_first=1000) as endpoint,
        serve_in_process(create_app(settings)) as base_url,
        admin_client(base_url) as api,
    ):
        hook = (
            await api.post("/webhooks", json={"url": endpoint.url, "event_types": ["*"]})
        ).json()
        await bus.publish(contact_created().envelope())

        async def failed() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = (
                await api.get(f"/webhooks/{hook['id']}/deliveries", params={"status": "failed"})
            ).json()["items"]
            return items

        log = await wait_until(failed, timeout=30, message="the failed delivery")
        assert log[0]["attempts"] == 3 and log[0]["last_status_code"] == 500
        assert len(log[0]["attempt_log"]) == 3
        assert endpoint.calls == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ],
)
async def test_internal_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False)


async def test_creating_a_webhook_to_an_internal_address_is_refused(
    db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    async with (
        serve_in_process(create_app(settings_for(db_url, nats_url, tmp_dir))) as base_url,
        admin_client(base_url) as api,
    ):
        answer = await api.post(
            "/webhooks", json={"url": "http://127.0.0.1:8080/x", "event_types": ["*"]}
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "url"
        rep = issue_token("sales_rep")
        forbidden = await api.get("/webhooks", headers={"Authorization": f"Bearer {rep}"})
        assert forbidden.status_code == 403


async def test_delivery_to_an_internal_address_is_refused_at_send_time() -> None:
    """A subscription saved while allowed, delivered while not: nothing is sent."""
    async with WebhookEndpoint() as endpoint, aiohttp.ClientSession() as http:
        sender = WebhookSender(None, allow_private=False, lease=timedelta(minutes=1))  # type: ignore[arg-type]
        job = Job("d1", "s1", "e1", "crm.x.y", "{}", 1)
        outcome = await sender.post(http, endpoint.url, "secret-0123456789abcdef", job)
    assert outcome.permanent and outcome.status_code is None
    assert outcome.error and outcome.error.startswith("refused")
    assert endpoint.calls == 0


async def test_the_delivery_log_keeps_only_the_retention(
    db_url: str, nats_url: str, tmp_dir: Path, db: Database
) -> None:
    """Finished deliveries last tried before the retention go, with their attempts; the rest stay."""
    settings = settings_for(
        db_url, nats_url, tmp_dir, CRM_WEBHOOKS_ALLOW_PRIVATE=True, CRM_WEBHOOK_LOG_RETENTION_DAYS=7
    )
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=8)
    async with WebhookEndpoint() as endpoint:
        async with (
            serve_in_process(create_app(settings)) as base_url,
            admin_client(base_url) as api,
        ):
            hook = (
                await api.post(
                    "/webhooks", json={"url": endpoint.url, "event_types": ["crm.erp.*"]}
                )
            ).json()
        # (event id, status, last tried), as an older log would have left them; the service
        # prunes on its first turn after a start, then every 10 minutes.
        rows = [
            ("old-ok", "succeeded", long_ago),
            ("old-failed", "failed", long_ago),
            ("recent-ok", "succeeded", now - timedelta(days=6)),
            # Due since long ago but never tried (e.g. the sender was down): sent, then kept.
            ("old-pending", "pending", long_ago),
        ]
        async with db.transaction() as session:
            for event_id, status, tried in rows:
                delivery_id = str(uuid.uuid4())
                session.add(
                    WebhookDelivery(
                        id=delivery_id,
                        subscription_id=hook["id"],
                        event_id=event_id,
                        event_type="crm.erp.order_synced",
                        body="{}",
                        status=status,
                        attempts=0 if status == "pending" else 1,
                        next_attempt_at=tried,
                        created_at=tried,
                    )
                )
                if status != "pending":
                    session.add(
                        WebhookAttempt(
                            id=str(uuid.uuid4()),
                            delivery_id=delivery_id,
                            at=tried,
                            status_code=200 if status == "succeeded" else 500,
                            duration_ms=5,
                        )
                    )

        async with (
            serve_in_process(create_app(settings)) as base_url,
            admin_client(base_url) as api,
        ):

            async def log() -> dict[str, str]:
                items = (await api.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]
                return {d["event_id"]: d["status"] for d in items}

            await wait_until(
                lambda: _equal(log(), {"recent-ok": "succeeded", "old-pending": "succeeded"}),
                timeout=20,
                message="the old finished deliveries pruned",
            )
    assert len(endpoint.received) == 1
    async with db.session() as session:
        codes = (await session.execute(select(WebhookAttempt.status_code))).scalars().all()
    assert sorted(codes, key=lambda code: code or 0) == [200, 204]  # recent-ok's, old-pending's


async def _equal(actual: Awaitable[Any], expected: Any) -> bool:
    return bool(await actual == expected)
