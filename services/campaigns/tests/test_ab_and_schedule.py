"""A/B tests pick the right winner and send it to the rest; scheduled campaigns start on time,
once, even with two replicas and after a restart."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import update

from crm_campaigns.campaigns.ab import VariantResult, choose_winner
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
    stream_events,
)
from crm_kernel.bus import Bus
from crm_kernel.db import Database
from crm_kernel.testing import serve_in_process, wait_until

OPEN = re.compile(r"/public/o/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


def test_winner_by_open_rate_not_by_count() -> None:
    results = [
        VariantResult("a", 0, sent=100, opened=30, clicked=1),
        VariantResult("b", 1, sent=50, opened=20, clicked=0),  # 40 % beats 30 %
        VariantResult("c", 2, sent=0, opened=0, clicked=0),
    ]
    assert choose_winner(results, "open") == "b"
    assert choose_winner(results, "click") == "a"


def test_ties_go_to_the_other_metric_then_to_the_control() -> None:
    tied = [
        VariantResult("a", 0, sent=10, opened=5, clicked=1),
        VariantResult("b", 1, sent=20, opened=10, clicked=4),
    ]
    assert choose_winner(tied, "open") == "b"
    silent = [VariantResult("a", 0, 10, 0, 0), VariantResult("b", 1, 10, 0, 0)]
    assert choose_winner(silent, "click") == "a"


async def test_ab_winner_goes_to_the_rest(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir)
    notifications = FakeNotifications(nats_url)
    async with notifications.running(), serve_in_process(create_app(settings)) as base:
        api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
        segment_id, _ = await audience_of(bus, db, 40)
        template = await create_template(api, marketer)
        campaign = await create_campaign(
            api,
            marketer,
            template_id=template["id"],
            segment_ids=[segment_id],
            variants=[{"name": "A", "subject": "Plain"}, {"name": "B", "subject": "Bold"}],
            ab_test_percent=50,
            ab_metric="open",
        )
        started = await campaign_action(api, marketer, campaign["id"], "send")
        assert started["ab_phase"] == "testing"
        await wait_until(lambda: len(notifications.commands) == 20, message="test group sent")
        await asyncio.sleep(0.3)
        assert len(notifications.commands) == 20  # the rest waits for the winner
        assert Counter(c["subject"] for c in notifications.commands) == {"Plain": 10, "Bold": 10}
        bold = [c for c in notifications.commands if c["subject"] == "Bold"][:4]
        plain = [c for c in notifications.commands if c["subject"] == "Plain"][:1]
        for command in bold + plain:
            token = OPEN.search(command["body_html"])
            assert token is not None
            assert (await api.get(f"{base}/public/open/{token.group(1)}")).status_code == 204
        async with db.transaction() as session:  # the test window is over
            await session.execute(
                update(Campaign)
                .where(Campaign.id == campaign["id"])
                .values(ab_decide_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        await wait_until(lambda: len(notifications.commands) == 40, message="rest sent")
        stats = (
            await api.get(f"/campaigns/{campaign['id']}/stats", headers=marketer.headers)
        ).json()
        await api.aclose()
    rest = notifications.commands[20:]
    assert {c["subject"] for c in rest} == {"Bold"}
    assert len(notifications.contacts) == 40
    by_name = {v["name"]: v for v in stats["variants"]}
    assert by_name["B"]["winner"] and not by_name["A"]["winner"]
    assert (by_name["A"]["opened"], by_name["B"]["opened"]) == (1, 4)
    assert by_name["B"]["audience"] == 30
    assert all(r.variant_id for r in await ledger(db, campaign["id"]))


async def test_scheduled_campaign_starts_once_with_two_replicas_after_a_restart(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir)
    notifications = FakeNotifications(nats_url)
    async with notifications.running():
        async with serve_in_process(create_app(settings)) as base:
            api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
            segment_id, contacts = await audience_of(bus, db, 30)
            template = await create_template(api, marketer)
            at = datetime.now(UTC) + timedelta(seconds=2)
            campaign = await create_campaign(
                api,
                marketer,
                template_id=template["id"],
                segment_ids=[segment_id],
                scheduled_at=at.isoformat(),
            )
            assert campaign["status"] == "scheduled"
            await api.aclose()
        # Down when it falls due; two replicas come up together afterwards.
        await asyncio.sleep(2.2)
        async with (
            serve_in_process(create_app(settings)),
            serve_in_process(create_app(settings)),
        ):
            await wait_until(lambda: len(notifications.contacts) == 30, timeout=30, message="sent")
            await asyncio.sleep(0.3)
    assert len(notifications.commands) == 30
    assert len(await ledger(db, campaign["id"])) == 30
    events = await stream_events(nats_url)
    starts = [
        e
        for e in events
        if e["type"] == "crm.campaigns.campaign.updated"
        and e["data"]["id"] == campaign["id"]
        and e["data"]["status"] == "sending"
    ]
    assert len(starts) == 1
    assert contacts
