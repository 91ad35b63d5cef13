"""Tracking links count opens and clicks once per recipient in unique figures; stats add
deals that followed, with revenue and ROI; bounces suppress the address."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from crm_campaigns.main import create_app
from crm_campaigns.recipients.models import Suppression
from crm_campaigns.testing import (
    FakeNotifications,
    User,
    audience_of,
    campaign_action,
    create_campaign,
    create_template,
    deal_event,
    ledger,
    new_user,
    publish_all,
    settings_for,
    stream_events,
)
from crm_campaigns.tracking.links import CLICK, UNSUBSCRIBE, Links
from crm_campaigns.tracking.links import Recipient as LinkRecipient
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.deals import DealCreated, DealWon
from crm_kernel.contracts.notifications import DeliveryBounced
from crm_kernel.db import Database
from crm_kernel.testing import serve_in_process, wait_until

TOKEN = re.compile(r"/public/([oc])/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


async def _stats(api: httpx.AsyncClient, user: User, campaign_id: str) -> dict[str, Any]:
    response = await api.get(f"/campaigns/{campaign_id}/stats", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_unique_and_total_opens_clicks_deals_and_roi(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir)
    notifications = FakeNotifications(nats_url)
    async with notifications.running(), serve_in_process(create_app(settings)) as base:
        api = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
        segment_id, contacts = await audience_of(bus, db, 4)
        template = await create_template(api, marketer)
        campaign = await create_campaign(
            api,
            marketer,
            template_id=template["id"],
            segment_id=segment_id,
            cost="1000.00",
            currency="RUB",
        )
        await campaign_action(api, marketer, campaign["id"], "send")
        await wait_until(lambda: len(notifications.commands) == 4, message="all sent")
        by_contact = {c["contact_id"]: c for c in notifications.commands}
        reader, clicker, bouncer = (by_contact[c.id] for c in contacts[:3])
        tokens = {kind: token for kind, token in TOKEN.findall(reader["body_html"])}
        for _ in range(3):
            assert (await api.get(f"{base}/public/open/{tokens['o']}")).status_code == 204
        click_tokens = dict(TOKEN.findall(clicker["body_html"]))
        for _ in range(2):
            clicked = await api.get(f"{base}/public/click/{click_tokens['c']}")
            assert clicked.status_code == 200
            assert clicked.json() == {"url": "https://shop.example/offer?a=1&b=2"}
        assert (await api.get(f"{base}/public/open/{tokens['o'][:-3]}abc")).status_code == 404
        forged = tokens["o"].split(".")[0] + "." + click_tokens["c"].split(".")[1]
        assert (await api.get(f"{base}/public/click/{forged}")).status_code == 404
        # Wrong purpose: an open token is no click token.
        assert (await api.get(f"{base}/public/click/{tokens['o']}")).status_code == 404
        bounce = DeliveryBounced(
            notification_id=str(uuid.uuid4()),
            key=bouncer["key"],
            channel="email",
            recipient=bouncer["to"],
            status="bounced",
            attempts=1,
            error="550 no such user",
            complaint=True,
            at=datetime.now(UTC).isoformat(),
        )
        won_contact = contacts[1].id
        await publish_all(
            bus,
            [
                bounce,
                deal_event(DealCreated, contact_id=won_contact, amount="3000.00"),
                deal_event(DealWon, contact_id=won_contact, amount="3000.00", version=2),
                deal_event(DealCreated, contact_id=str(uuid.uuid4()), amount="5"),
            ],
        )

        async def settled() -> dict[str, Any] | None:
            stats = await _stats(api, marketer, campaign["id"])
            ready = stats["deals"]["won"] == 1 and stats["totals"]["complained"] == 1
            return stats if ready and stats["status"] == "sent" else None

        stats = await wait_until(settled, timeout=30, message="stats settled")
        rep = new_user(Role.SALES_REP)
        assert (
            await api.get(f"/campaigns/{campaign['id']}/stats", headers=rep.headers)
        ).status_code == 200
        assert (
            await api.post(f"/campaigns/{campaign['id']}/cancel", headers=rep.headers)
        ).status_code == 403
        await api.aclose()
    totals = stats["totals"]
    assert totals["audience"] == 4 and totals["sent"] == 4
    assert (totals["opened"], totals["opens_total"]) == (2, 3)  # a click proves an open
    assert (totals["clicked"], totals["clicks_total"]) == (1, 2)
    assert totals["bounced"] == 1 and totals["complained"] == 1
    assert totals["response_rate"] == 0.5
    assert stats["variants"][0]["opened"] == 2
    assert sum(h["sent"] for h in stats["hourly"]) == 4
    deals = stats["deals"]
    assert deals["created"] == 1 and deals["won"] == 1
    assert deals["revenue"] == [{"currency": "RUB", "amount": "3000.0000"}]
    assert deals["roi"] == 2.0
    async with db.session() as session:
        suppressed = set((await session.scalars(select(Suppression.address))).all())
    assert bouncer["to"].casefold() in suppressed
    rows = {r.contact_id: r for r in await ledger(db, campaign["id"])}
    assert rows[contacts[0].id].opens == 3 and rows[contacts[1].id].clicks == 2
    # Reports get the same figures as events.
    facts = Counter(
        (e["type"].rsplit(".", 1)[1], e["data"].get("unique"))
        for e in await stream_events(nats_url)
        if e["data"].get("campaign_id") == campaign["id"] or e["data"].get("id") == campaign["id"]
    )
    assert facts[("sent", True)] == 4
    assert (facts[("opened", True)], facts[("opened", False)]) == (1, 2)
    assert (facts[("clicked", True)], facts[("clicked", False)]) == (1, 1)
    assert facts[("bounced", True)] == 1 and facts[("complained", True)] == 1
    assert facts[("progress", None)] >= 1 and facts[("sent", None)] == 1  # campaign.sent


def test_links_are_click_tracked_but_the_unsubscribe_link_is_not(tmp_dir: Path) -> None:
    """Following the unsubscribe link must not count as a click (nor, through it, an open)."""
    settings = settings_for("sqlite+aiosqlite://", "nats://127.0.0.1:1", tmp_dir)
    links = Links(settings)
    who = LinkRecipient(str(uuid.uuid4()), str(uuid.uuid4()))
    unsubscribe = links.url(UNSUBSCRIBE, who)
    body = (
        '<html><body><a href="https://shop.example/a?x=1&amp;y=2">A</a>'
        f'<a href="{unsubscribe}">Unsubscribe</a></body></html>'
    )
    tracked = links.track_html(body, who, clicks=True, opens=True)
    (click,) = re.findall(r"/public/c/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", tracked)
    recipient, data = links.read(CLICK, click)
    assert recipient == who and data == {"u": "https://shop.example/a?x=1&y=2"}
    assert f'href="{unsubscribe}"' in tracked
    assert tracked.count("/public/o/") == 1 and tracked.endswith("</body></html>")
