"""Periodic jobs with several replicas: contact scores published once per change, and the weekly
report mailed once per head of sales per week (and on demand by an admin)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.reports import ContactScored
from crm_kernel.db import Database
from crm_kernel.events import Envelope
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.main import create_app
from crm_reports.models import ContactScore
from crm_reports.scoring.service import publish_changes
from crm_reports.settings import ReportsSettings
from crm_reports.testing import Pipeline, caught_up, journey, user
from crm_reports.weekly.schedule import Weekly, previous_week
from crm_reports.weekly.service import send_weekly

OPEN, WON = str(uuid.uuid4()), str(uuid.uuid4())
PIPELINE = Pipeline(stages={OPEN: (0, "20", "open"), WON: (1, "100", "won")})
NOW = datetime.now(UTC)


def settings(db_url: str, nats_url: str, tmp_dir: Path, **extra: Any) -> ReportsSettings:
    return ReportsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        **extra,
    )


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


async def stream_messages(bus: Bus, stream: str) -> list[Envelope]:
    info = await bus.js.stream_info(stream)
    return [
        Envelope.from_bytes((await bus.js.get_msg(stream, seq)).data or b"")
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


def won_sale(
    owner: str, contact: str, days_ago: float, amount: str, currency: str = "RUB"
) -> list[Any]:
    """A deal of `contact`'s opened a day before it was won, `days_ago` days before NOW."""
    return journey(
        PIPELINE,
        str(uuid.uuid4()),
        owner,
        [(OPEN, 0), (WON, 1)],
        start=NOW - timedelta(days=days_ago + 1),
        amount=amount,
        currency=currency,
        contact_id=contact,
    )


async def test_scores_are_published_once_per_run_and_only_when_they_change(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    # The service's own job is off: the test runs it, as each replica would.
    config = settings(db_url, nats_url, tmp_dir, REPORTS_SCORING_INTERVAL_SECONDS=0)
    anna, c1, c2 = (str(uuid.uuid4()) for _ in range(3))

    def sale(contact: str, days_ago: float, amount: str) -> list[Any]:
        return won_sale(anna, contact, days_ago, amount)

    async with serve_in_process(create_app(config)):
        for event in [PIPELINE.created(NOW), *sale(c1, 10, "900.00"), *sale(c2, 200, "100.00")]:
            await bus.publish(event.envelope())
        await wait_until(lambda: caught_up(bus, "CRM_DEALS"), message="deals applied")
        db = Database(db_url)
        try:
            assert await publish_changes(db, config, "run-1") == 2
            # The same run on another replica, and a later run with nothing changed: nothing sent.
            assert await publish_changes(db, config, "run-1") is None
            assert await publish_changes(db, config, "run-2") == 0
            for event in sale(c2, 1, "5000.00"):
                await bus.publish(event.envelope())
            await wait_until(lambda: caught_up(bus, "CRM_DEALS"), message="new sale applied")
            assert await publish_changes(db, config, "run-3") == 2

            async def published() -> list[Envelope] | None:
                found = await stream_messages(bus, "CRM_REPORTS")
                return found if len(found) == 4 else None

            scored = await wait_until(published, message="4 scores on the bus")
        finally:
            await db.dispose()
    latest = {}
    for envelope in scored:
        event = envelope.event(ContactScored)
        assert isinstance(event, ContactScored)
        latest[event.contact_id] = event
    # c2 bought again yesterday (5,100 RUB in two deals): now the better customer on every score.
    assert (latest[c2].recency, latest[c2].frequency, latest[c2].monetary) == (3, 3, 3)
    assert (latest[c1].recency, latest[c1].frequency, latest[c1].monetary) == (1, 1, 1)
    assert latest[c2].revenue_to_date == "5100.00" and latest[c2].currency == "RUB"


async def test_weekly_report_reaches_each_head_once_per_week_with_two_replicas(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    # Due this very day at midnight, so it is due now; checked five times a second.
    weekday = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[NOW.weekday()]
    schedule = {
        "REPORTS_WEEKLY_AT": f"{weekday} 00:00",
        "REPORTS_TIME_ZONE": "UTC",
        "REPORTS_SCHEDULER_TICK_SECONDS": 0.2,
    }
    config = settings(db_url, nats_url, tmp_dir, **schedule)
    team, heads, rep = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(2)], str(uuid.uuid4())
    users = [
        user(heads[0], "head_of_sales", [team], "h0@example.com"),
        user(heads[1], "head_of_sales", [], "h1@example.com"),
        user(rep, "sales_rep", [team]),
    ]
    due = Weekly.parse(f"{weekday} 00:00", "UTC").last_due(NOW)
    start, _ = previous_week(due)
    sale = journey(
        PIPELINE, str(uuid.uuid4()), rep, [(OPEN, 0), (WON, 2)], start=start, amount="750.00"
    )
    async with contextlib.AsyncExitStack() as replicas:
        for _ in range(2):
            await replicas.enter_async_context(serve_in_process(create_app(config)))
        for event in [PIPELINE.created(start), *sale]:
            await bus.publish(event.envelope())
        # The sale is in the read models before the heads are known (and so before any mail).
        await wait_until(lambda: caught_up(bus, "CRM_DEALS"), message="the sale applied")
        for event in users:
            await bus.publish(event.envelope())

        async def mails() -> list[Envelope] | None:
            found = await stream_messages(bus, "CRM_NOTIFICATIONS_COMMANDS")
            return found if len(found) >= 2 else None

        sent = await wait_until(mails, timeout=15, message="the weekly report to both heads")
        db = Database(db_url)
        try:
            # A third replica (or a restart) this week finds both claimed.
            assert await send_weekly(db, Weekly.parse(f"{weekday} 00:00", "UTC"), NOW) == 0
            async with db.session() as session:
                pending = (
                    await session.execute(
                        text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    )
                ).scalar_one()
            assert pending == 0
        finally:
            await db.dispose()
        assert len(await stream_messages(bus, "CRM_NOTIFICATIONS_COMMANDS")) == 2
        by_to = {e.data["to"]: e.data for e in sent}
        assert set(by_to) == {"h0@example.com", "h1@example.com"}
        # The team's head sees the rep's win of last week; the other head sees none of it.
        assert rep in by_to["h0@example.com"]["body_text"]
        assert "750.00 RUB" in by_to["h0@example.com"]["body_text"]
        assert rep not in by_to["h1@example.com"]["body_text"]
        assert by_to["h0@example.com"]["key"] == f"reports-weekly:{heads[0]}:{due.date()}"

    # On demand: admins only, once more to each head.
    config_now = settings(db_url, nats_url, tmp_dir, **schedule)
    async with serve_in_process(create_app(config_now)) as url:
        async with httpx.AsyncClient(base_url=f"{url}/api/v1") as client:
            rep_token = {"Authorization": f"Bearer {issue_token(Role.SALES_REP, rep)}"}
            denied = await client.post("/reports/scheduled/send-now", headers=rep_token)
            assert denied.status_code == 403
            admin = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}
            response = await client.post("/reports/scheduled/send-now", headers=admin)
            assert response.status_code == 202 and response.json() == {"sent": 2}

            async def four() -> bool:
                return len(await stream_messages(bus, "CRM_NOTIFICATIONS_COMMANDS")) == 4

            await wait_until(four, message="the on-demand report to both heads")


async def test_scores_share_ties_and_rank_money_within_the_main_currency(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    config = settings(db_url, nats_url, tmp_dir, REPORTS_SCORING_INTERVAL_SECONDS=0)
    anna, c1, c2, c3, c4 = (str(uuid.uuid4()) for _ in range(5))

    def sale(contact: str, days_ago: float, amount: str, currency: str = "RUB") -> list[Any]:
        return won_sale(anna, contact, days_ago, amount, currency)

    sales = [
        *sale(c1, 10, "100.00"),
        *sale(c1, 5, "100.00"),
        *sale(c2, 5, "200.00"),  # won at the same time as c1's last: the same recency
        *sale(c3, 30, "50.00", "USD"),
        # Two USD deals against one RUB deal: USD is c4's main currency, revenue 20.00.
        *sale(c4, 40, "10.00", "USD"),
        *sale(c4, 50, "10.00", "USD"),
        *sale(c4, 60, "500.00"),
    ]
    async with serve_in_process(create_app(config)) as base_url:
        for event in [PIPELINE.created(NOW), *sales]:
            await bus.publish(event.envelope())
        await wait_until(lambda: caught_up(bus, "CRM_DEALS"), message="deals applied")
        db = Database(db_url)
        try:
            assert await publish_changes(db, config, "run-1") == 4
            async with db.session() as session:
                stored = {
                    row.contact_id: (
                        row.recency,
                        row.frequency,
                        row.monetary,
                        row.revenue_to_date,
                        row.currency,
                    )
                    for row in (await session.execute(select(ContactScore))).scalars()
                }
        finally:
            await db.dispose()
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            response = await client.get(
                "/reports/rfm",
                headers={"Authorization": f"Bearer {issue_token(Role.ADMIN)}"},
            )
    # Recency, oldest first: c4, c3, then c1 and c2 together; frequency: c2 and c3 (one win),
    # c1 (two), c4 (three); money: c1 and c2 tie in RUB, c4 trails c3 in USD.
    assert stored == {
        c1: (3, 3, 1, "200.00", "RUB"),
        c2: (3, 1, 1, "200.00", "RUB"),
        c3: (2, 1, 3, "50.00", "USD"),
        c4: (1, 4, 1, "20.00", "USD"),
    }
    reported = {
        r["contact_id"]: (r["recency"], r["frequency"], r["monetary"])
        for r in response.json()["customers"]
    }
    assert reported == {c: scores[:3] for c, scores in stored.items()}
