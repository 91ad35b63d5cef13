"""Sending: the ledger gives every recipient exactly one message across pause, resume,
restart and cancel; unsubscribes stop pending messages; the campaign ends `sent`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from crm_campaigns.campaigns.models import Campaign
from crm_campaigns.main import create_app
from crm_campaigns.testing import (
    FakeNotifications,
    User,
    audience_of,
    campaign_action,
    create_campaign,
    create_template,
    ledger,
    settings_for,
)
from crm_campaigns.tracking.links import UNSUBSCRIBE, Links
from crm_campaigns.tracking.links import Recipient as LinkRecipient
from crm_kernel.bus import Bus
from crm_kernel.db import Database
from crm_kernel.testing import free_port, serve_in_process, wait_until


async def _status(db: Database, campaign_id: str) -> str:
    async with db.session() as session:
        status = await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    return str(status)


async def _read(api: httpx.AsyncClient, user: User, campaign_id: str) -> dict[str, Any]:
    response = await api.get(f"/campaigns/{campaign_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_exactly_one_message_per_recipient_across_pause_resume_and_restart(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir, CAMPAIGNS_SEND_BATCH_SIZE=20)
    port = free_port()
    notifications = FakeNotifications(nats_url)
    async with notifications.running():
        async with serve_in_process(create_app(settings), port) as base:
            api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
            segment_id, contacts = await audience_of(bus, db, 300)
            template = await create_template(api, marketer)
            campaign = await create_campaign(
                api,
                marketer,
                template_id=template["id"],
                segment_ids=[segment_id],
                rate_per_second=60,
            )
            started = await campaign_action(api, marketer, campaign["id"], "send")
            assert started["status"] == "sending"
            assert started["progress"]["audience"] == 300
            # Paused at once: a batch or two is out, the rest waits (5 s of sending at this
            # rate), so where it stops does not depend on timing.
            handed = await _pause_and_settle(api, marketer, campaign["id"], notifications)
            again = await campaign_action(api, marketer, campaign["id"], "resume")
            assert again["status"] == "sending"
            resumed = await _pause_and_settle(api, marketer, campaign["id"], notifications)
            assert handed <= resumed < 300
            handed = resumed
            await api.aclose()
        # The service stopped mid-campaign; a new process takes over from the database
        # and resumes exactly where the first stopped.
        async with serve_in_process(create_app(settings), port) as base:
            api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
            assert (await _read(api, marketer, campaign["id"]))["status"] == "paused"
            await asyncio.sleep(0.3)  # a few sender rounds of the new process: still nothing
            assert len(notifications.commands) == handed
            await campaign_action(api, marketer, campaign["id"], "resume")
            await wait_until(
                lambda: _is(db, campaign["id"], "sent"), timeout=60, message="campaign sent"
            )
            final = await _read(api, marketer, campaign["id"])
            await api.aclose()
    assert notifications.keys.most_common(1)[0][1] == 1
    assert notifications.contacts == {c.id for c in contacts}
    assert final["progress"]["sent"] == 300 and final["finished_at"]
    first = notifications.commands[0]
    assert first["key"] == f"campaign:{campaign['id']}:{first['contact_id']}"
    assert first["source_type"] == "campaign" and first["source_id"] == campaign["id"]
    assert "/public/u/" in first["unsubscribe_url"] and "/public/c/" in first["body_html"]
    assert "/public/o/" in first["body_html"]


async def _pause_and_settle(
    api: httpx.AsyncClient, user: User, campaign_id: str, notifications: FakeNotifications
) -> int:
    """Pause, then wait until the rows already handed over have arrived; returns their count."""
    paused = await campaign_action(api, user, campaign_id, "pause")
    assert paused["status"] == "paused"
    progress = (await _read(api, user, campaign_id))["progress"]
    handed = progress["audience"] - progress["pending"]
    await wait_until(lambda: len(notifications.commands) == handed, message="in flight")
    return int(handed)


async def _is(db: Database, campaign_id: str, status: str) -> bool:
    return await _status(db, campaign_id) == status


async def test_unsubscribe_during_sending_suppresses_and_cancel_stops_the_rest(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir, CAMPAIGNS_SEND_BATCH_SIZE=10)
    notifications = FakeNotifications(nats_url)
    async with notifications.running(), serve_in_process(create_app(settings)) as base:
        api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
        segment_id, _ = await audience_of(bus, db, 120)
        template = await create_template(api, marketer)
        campaign = await create_campaign(
            api, marketer, template_id=template["id"], segment_ids=[segment_id], rate_per_second=20
        )
        await campaign_action(api, marketer, campaign["id"], "send")
        rows = await ledger(db, campaign["id"])
        last = rows[-1]
        assert last.status == "pending"
        token = Links(settings).token(UNSUBSCRIBE, LinkRecipient(campaign["id"], last.contact_id))
        page = await api.get(f"{base}/public/unsubscribe/{token}")
        assert page.status_code == 200 and page.json()["unsubscribed"] is False
        assert "***@example.com" in page.json()["address"]
        for _ in range(2):  # one-click, idempotent
            done = await api.post(
                f"{base}/public/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click"
            )
            assert done.status_code == 200 and done.json() == {"unsubscribed": True}
        rows = {r.contact_id: r for r in await ledger(db, campaign["id"])}
        assert rows[last.contact_id].status == "suppressed"
        bad = await api.post(f"{base}/public/unsubscribe/{token[:-2]}xx")
        assert bad.status_code == 404
        await wait_until(lambda: len(notifications.commands) >= 20, message="some sent")
        cancelled = await campaign_action(api, marketer, campaign["id"], "cancel")
        assert cancelled["status"] == "cancelled"
        assert cancelled["progress"]["cancelled"] > 0
        handed = 120 - cancelled["progress"]["cancelled"] - cancelled["progress"]["suppressed"]
        await wait_until(lambda: len(notifications.commands) == handed, message="in flight")
        assert (
            await api.post(f"/campaigns/{campaign['id']}/resume", headers=marketer.headers)
        ).status_code == 409
        await api.aclose()
    assert last.contact_id not in notifications.contacts
    assert len(notifications.commands) == handed < 120


async def test_unsubscribe_while_paused_suppresses_that_recipients_pending_message(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir, CAMPAIGNS_SEND_BATCH_SIZE=10)
    notifications = FakeNotifications(nats_url)
    async with notifications.running(), serve_in_process(create_app(settings)) as base:
        api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
        segment_id, contacts = await audience_of(bus, db, 40)
        template = await create_template(api, marketer)
        campaign = await create_campaign(
            api, marketer, template_id=template["id"], segment_ids=[segment_id], rate_per_second=10
        )
        await campaign_action(api, marketer, campaign["id"], "send")
        # Paused while sending (4 s of it at this rate): the rest of the ledger waits.
        handed = await _pause_and_settle(api, marketer, campaign["id"], notifications)
        pending = [r for r in await ledger(db, campaign["id"]) if r.status == "pending"]
        assert handed < 40 and pending
        leaving = pending[-1].contact_id
        token = Links(settings).token(UNSUBSCRIBE, LinkRecipient(campaign["id"], leaving))
        done = await api.post(
            f"{base}/public/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click"
        )
        assert done.status_code == 200 and done.json() == {"unsubscribed": True}
        await campaign_action(api, marketer, campaign["id"], "resume")
        await wait_until(
            lambda: _is(db, campaign["id"], "sent"), timeout=60, message="campaign sent"
        )
        final = await _read(api, marketer, campaign["id"])
        await api.aclose()
    rows = {r.contact_id: r for r in await ledger(db, campaign["id"])}
    assert rows[leaving].status == "suppressed" and rows[leaving].unsubscribed_at is not None
    assert rows[leaving].sent_at is None
    assert leaving not in notifications.contacts
    assert notifications.contacts == {c.id for c in contacts} - {leaving}
    assert len(notifications.commands) == 39
    assert final["progress"]["suppressed"] == 1 and final["progress"]["sent"] == 39
