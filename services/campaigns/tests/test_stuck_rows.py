"""Rows handed over whose delivery report never comes: re-published under the same key a
bounded number of times, then failed with the reason, so the campaign still completes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

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
from crm_kernel.bus import Bus
from crm_kernel.db import Database
from crm_kernel.testing import serve_in_process, wait_until


async def _sent(db: Database, campaign_id: str) -> bool:
    async with db.session() as session:
        status = await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    return status == "sent"


async def _campaign(api: httpx.AsyncClient, user: User, segment_id: str) -> str:
    template = await create_template(api, user)
    campaign = await create_campaign(
        api, user, template_id=template["id"], segment_ids=[segment_id]
    )
    await campaign_action(api, user, campaign["id"], "send")
    return str(campaign["id"])


async def test_lost_commands_are_republished_with_their_key_then_failed(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    settings = settings_for(
        db_url,
        nats_url,
        tmp_dir,
        CAMPAIGNS_REQUEUE_AFTER_SECONDS=1.5,
        CAMPAIGNS_REQUEUE_ATTEMPTS=2,
    )
    # Plays a notifications service that loses every command (no delivery report).
    notifications = FakeNotifications(nats_url, report=False)
    async with notifications.running(), serve_in_process(create_app(settings)) as base:
        api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
        segment_id, contacts = await audience_of(bus, db, 3)
        lost = await _campaign(api, marketer, segment_id)
        await wait_until(lambda: _sent(db, lost), timeout=60, message="campaign completes")
        rows = await ledger(db, lost)
        assert {r.status for r in rows} == {"failed"}
        assert {r.error for r in rows} == {"no delivery report after 2 re-publications"}
        keys = Counter(c["key"] for c in notifications.commands)
        # The first hand-over and two re-publications, all under the row's one key.
        assert keys == Counter({f"campaign:{lost}:{c.id}": 3 for c in contacts})
        read = (await api.get(f"/campaigns/{lost}", headers=marketer.headers)).json()
        assert read["progress"]["failed"] == 3 and read["status"] == "sent"

        # A command lost once: its re-publication is reported, the row ends sent.
        segment_id, contacts = await audience_of(bus, db, 3)
        notifications.commands.clear()
        recovered = await _campaign(api, marketer, segment_id)

        def republished() -> bool:
            return len(notifications.commands) >= 6

        await wait_until(republished, timeout=30, message="one re-publication each")
        notifications.report = True
        await wait_until(lambda: _sent(db, recovered), timeout=60, message="campaign completes")
        rows = await ledger(db, recovered)
        await api.aclose()
    assert {r.status for r in rows} == {"sent"}
    assert all(1 <= r.requeues <= 2 for r in rows)
    assert all(r.error is None for r in rows)
