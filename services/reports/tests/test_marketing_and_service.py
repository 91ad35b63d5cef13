"""Campaigns, marketing events, requests, activities and tasks, KPIs, lifecycle, churn and RFM/CLV
from their events: exact figures, visibility by owner, and reordered state events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts import campaigns as cc
from crm_kernel.contracts import contacts as kc
from crm_kernel.events import IntegrationEvent
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.main import create_app
from crm_reports.settings import ReportsSettings
from crm_reports.testing import Pipeline, caught_up, journey

T = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
OPEN, WON = str(uuid.uuid4()), str(uuid.uuid4())
PIPELINE = Pipeline(stages={OPEN: (0, "20", "open"), WON: (1, "100", "won")})
ANNA, BORIS, MARKETER = (str(uuid.uuid4()) for _ in range(3))
C1, C2, C3, C4, C5 = (str(uuid.uuid4()) for _ in range(5))
CAMPAIGN, VA, VB, EVENT = (str(uuid.uuid4()) for _ in range(4))
STREAMS = ("CRM_DEALS", "CRM_CONTACTS", "CRM_CAMPAIGNS")


def iso(days: float = 0, hours: float = 0) -> str:
    return (T + timedelta(days=days, hours=hours)).isoformat()


def contact(
    kind: type[kc.ContactState],
    cid: str,
    owner: str,
    version: int,
    stage: str,
    created: float,
    updated: float,
    deleted: bool = False,
) -> kc.ContactState:
    return kind(
        id=cid,
        first_name="C",
        owner_id=owner,
        lifecycle_stage=stage,
        version=version,
        created_at=iso(created),
        updated_at=iso(updated),
        deleted_at=iso(updated) if deleted else None,
    )


def fact(
    kind: type[cc.MessageFact], cid: str, variant: str | None, hours: float, unique: bool = True
) -> cc.MessageFact:
    return kind(
        campaign_id=CAMPAIGN,
        variant_id=variant,
        contact_id=cid,
        channel="email",
        at=iso(hours=hours),
        unique=unique,
    )


def won_deal(
    owner: str, cid: str | None, created: float, won: float, amount: str, **extra: Any
) -> list[IntegrationEvent]:
    return journey(
        PIPELINE,
        str(uuid.uuid4()),
        owner,
        [(OPEN, created), (WON, won)],
        start=T,
        amount=amount,
        contact_id=cid,
        **extra,
    )


def activity(
    kind: type[kc.ActivityState], type_: str, days: float, version: int = 1, aid: str | None = None
) -> kc.ActivityState:
    return kind(
        id=aid or str(uuid.uuid4()),
        contact_id=C1,
        activity_type=type_,
        occurred_at=iso(days),
        summary="s",
        author_id=ANNA,
        version=version,
        created_at=iso(days),
        updated_at=iso(days),
        deleted_at=iso(days) if kind is kc.ActivityDeleted else None,
    )


def request(
    kind: type[kc.RequestState],
    rid: str,
    owner: str,
    version: int,
    opened: float,
    resolved_hours: float | None = None,
) -> kc.RequestState:
    resolved = resolved_hours is not None
    return kind(
        id=rid,
        contact_id=C1,
        subject="s",
        status="resolved" if resolved else "open",
        opened_at=iso(opened),
        resolved_at=iso(opened, resolved_hours or 0) if resolved else None,
        resolution_seconds=int((resolved_hours or 0) * 3600) if resolved else None,
        assignee_id=owner,
        version=version,
        created_at=iso(opened),
        updated_at=iso(opened),
    )


def task(owner: str, due: float, status: str) -> kc.TaskCreated:
    return kc.TaskCreated(
        id=str(uuid.uuid4()),
        title="t",
        due_at=iso(due),
        assignee_id=owner,
        status=status,
        version=1,
        created_at=iso(-1),
        updated_at=iso(-1),
    )


def events() -> list[IntegrationEvent]:
    campaign = cc.CampaignSent(
        id=CAMPAIGN,
        name="Spring",
        channel="email",
        status="sent",
        variants=[
            cc.VariantState(id=VA, name="Subject A"),
            cc.VariantState(id=VB, name="Subject B"),
        ],
        cost="1000.00",
        currency="RUB",
        attribution_days=30,
        audience=4,
        sent=3,
        failed=1,
        started_at=iso(),
        created_by=MARKETER,
        version=5,
        created_at=iso(-3),
        updated_at=iso(1),
    )
    r1 = str(uuid.uuid4())
    deleted_call = str(uuid.uuid4())
    return [
        PIPELINE.created(T - timedelta(days=60)),
        contact(kc.ContactCreated, C1, ANNA, 1, "awareness", -30, -30),
        contact(kc.ContactUpdated, C1, ANNA, 2, "exploration", -30, 3),
        contact(kc.ContactCreated, C2, ANNA, 1, "awareness", -30, -30),
        contact(kc.ContactCreated, C3, BORIS, 1, "awareness", 20, 20),
        # Deleted on 2 April: gone from April's figures. The newer version arrives first.
        contact(kc.ContactDeleted, C4, BORIS, 2, "awareness", -30, 1, deleted=True),
        contact(kc.ContactCreated, C4, BORIS, 1, "awareness", -30, -30),
        # C5 was merged into C2; its own creation arrives after the merge and stays gone.
        kc.ContactMerged(
            id=C2,
            first_name="C",
            owner_id=ANNA,
            lifecycle_stage="awareness",
            version=2,
            created_at=iso(-30),
            updated_at=iso(-30),
            merged_id=C5,
        ),
        contact(kc.ContactCreated, C5, ANNA, 1, "awareness", -40, -40),
        campaign,
        # An older version of the campaign arrives late and changes nothing.
        cc.CampaignCreated(
            **{
                **campaign.model_dump(),
                "status": "draft",
                "cost": "1.00",
                "version": 1,
                "started_at": None,
            }
        ),
        fact(cc.MessageSent, C1, VA, 0),
        fact(cc.MessageDelivered, C1, VA, 0.1),
        fact(cc.MessageOpened, C1, VA, 1),
        fact(cc.MessageOpened, C1, VA, 2, unique=False),
        fact(cc.MessageClicked, C1, VA, 2),
        fact(cc.MessageSent, C2, VA, 0),
        fact(cc.MessageBounced, C2, VA, 0.2),
        # C3's open comes before its "sent" (reordered); the unsubscribe carries no variant.
        fact(cc.MessageOpened, C3, VB, 3),
        fact(cc.MessageSent, C3, VB, 0),
        fact(cc.MessageDelivered, C3, VB, 0.1),
        cc.RecipientUnsubscribed(
            campaign_id=CAMPAIGN, contact_id=C3, channel="email", at=iso(hours=4)
        ),
        fact(cc.MessageFailed, C4, VB, 0),
        # C1 buys 5 days after the mailing (attributed, won 3000 RUB on 11 April).
        *won_deal(ANNA, C1, 5, 10, "3000.00"),
        # C3 buys after the 30-day window; C2 bought before the mailing: neither counts.
        *journey(PIPELINE, str(uuid.uuid4()), BORIS, [(OPEN, 40)], start=T, contact_id=C3),
        *journey(PIPELINE, str(uuid.uuid4()), ANNA, [(OPEN, -1)], start=T, contact_id=C2),
        # Names the campaign as its source: counted whoever it is for.
        *journey(
            PIPELINE,
            str(uuid.uuid4()),
            BORIS,
            [(OPEN, 50)],
            start=T,
            amount="500.00",
            source_campaign_id=CAMPAIGN,
        ),
        # C4 became a client in March (the previous period): won in 10 days.
        *won_deal(BORIS, C4, -27, -17, "200.00"),
        cc.MarketingEventCreated(
            id=EVENT,
            name="Seminar",
            kind="seminar",
            starts_at=iso(2),
            invited=99,
            version=1,
            created_at=iso(-5),
            updated_at=iso(-5),
        ),
        *(cc.ParticipantInvited(event_id=EVENT, contact_id=c, at=iso(-1)) for c in (C1, C2, C3)),
        *(cc.ParticipantRegistered(event_id=EVENT, contact_id=c, at=iso(0)) for c in (C1, C2)),
        cc.ParticipantAttended(event_id=EVENT, contact_id=C1, at=iso(2)),
        cc.ParticipantAttended(event_id=EVENT, contact_id=C1, at=iso(2)),
        # Requests: Anna resolved two (2 h and 4 h); the resolution arrives before the opening.
        request(kc.RequestResolved, r1, ANNA, 2, 0, resolved_hours=2),
        request(kc.RequestOpened, r1, ANNA, 1, 0),
        request(kc.RequestResolved, str(uuid.uuid4()), ANNA, 2, 1, resolved_hours=4),
        request(kc.RequestOpened, str(uuid.uuid4()), BORIS, 1, 0),
        # Anna's activities on C1: two calls and a meeting; a third call was deleted.
        activity(kc.ActivityCreated, "call", 1),
        activity(kc.ActivityCreated, "call", 2),
        activity(kc.ActivityCreated, "meeting", 3),
        activity(kc.ActivityDeleted, "call", 1.5, version=2, aid=deleted_call),
        activity(kc.ActivityCreated, "call", 1.5, aid=deleted_call),
        task(ANNA, 0, "open"),
        task(ANNA, 0, "done"),
        task(BORIS, 3650, "open"),
        kc.LeadReceived(
            id=str(uuid.uuid4()),
            contact_id=C2,
            is_new_contact=False,
            owner_id=ANNA,
            source="web_form",
            received_at=iso(1),
        ),
    ]


@pytest.fixture
async def reports(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            bus = await Bus.connect(nats_url, name="test")
            try:
                for event in events():
                    await bus.publish(event.envelope())
                await wait_until(lambda: caught_up(bus, *STREAMS), message="all applied")
            finally:
                await bus.close()
            yield client


def get(client: httpx.AsyncClient, role: Role, user_id: str | None = None) -> Any:
    token = issue_token(role, user_id) if user_id else issue_token(role)

    async def fetch(path: str, **params: Any) -> Any:
        response = await client.get(
            f"/reports/{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return response.json() if "format" not in params else response.text

    return fetch


FIGURES = (
    "audience",
    "sent",
    "delivered",
    "failed",
    "bounced",
    "opened",
    "opens_total",
    "clicked",
    "unsubscribed",
    "response_rate",
    "deals_created",
    "deals_won",
)


async def test_campaign_response_attribution_and_roi(reports: httpx.AsyncClient) -> None:
    marketer = get(reports, Role.MARKETER, MARKETER)
    [row] = (await marketer("campaigns"))["campaigns"]
    assert tuple(row[k] for k in FIGURES) == (4, 3, 2, 1, 1, 2, 3, 1, 1, 0.5, 2, 1)
    assert row["revenue"] == [{"currency": "RUB", "amount": "3000.00", "weighted": None}]
    assert row["cost"]["amount"] == "1000.00" and row["roi"] == 2.0
    variants = {v["variant_id"]: v for v in row["variants"]}
    assert {k: tuple(v[f] for f in FIGURES) for k, v in variants.items()} == {
        VA: (2, 2, 1, 0, 1, 1, 2, 1, 0, 1.0, 1, 1),
        VB: (2, 1, 1, 1, 0, 1, 1, 0, 1, 0.0, 0, 0),
        None: (0, 0, 0, 0, 0, 0, 0, 0, 0, None, 1, 0),  # the deal that named the campaign
    }
    assert variants[VA]["name"] == "Subject A"
    # Anna counts only her recipients (C1, C2) and her deals.
    [mine] = (await get(reports, Role.SALES_REP, ANNA)("campaigns"))["campaigns"]
    assert (mine["sent"], mine["opened"], mine["deals_created"]) == (2, 1, 1)
    as_csv = await marketer("campaigns", format="csv")
    assert as_csv.count("\n") == 1 + 1 + 3 and "Subject B" in as_csv


async def test_marketing_event_participation_and_deals_that_followed(
    reports: httpx.AsyncClient,
) -> None:
    [row] = (await get(reports, Role.MARKETER, MARKETER)("events"))["events"]
    assert (row["invited"], row["registered"], row["attended"], row["participation"]) == (
        3,
        2,
        1,
        0.3333,
    )
    assert (row["deals_created"], row["deals_won"]) == (1, 1)
    assert row["revenue"] == [{"currency": "RUB", "amount": "3000.00", "weighted": None}]


async def test_requests_activities_and_overdue_tasks(reports: httpx.AsyncClient) -> None:
    admin = get(reports, Role.ADMIN)
    rows = {r["assignee_id"]: r for r in (await admin("requests"))["rows"]}
    figures = ("opened", "resolved", "open_now", "avg_resolution_hours")
    assert {k: tuple(r[f] for f in figures) for k, r in rows.items()} == {
        ANNA: (2, 2, 0, 3.0),
        BORIS: (1, 0, 1, None),
        None: (3, 2, 1, 3.0),
    }
    boris = get(reports, Role.SALES_REP, BORIS)
    assert [r["assignee_id"] for r in (await boris("requests"))["rows"]] == [BORIS, None]
    managers = {m["owner_id"]: m for m in (await admin("managers"))["managers"]}
    assert managers[ANNA]["activities"] == {"call": 2, "meeting": 1}
    assert (managers[ANNA]["overdue_tasks"], managers[BORIS]["overdue_tasks"]) == (1, 0)


async def test_kpis_against_the_previous_period(reports: httpx.AsyncClient) -> None:
    april = {"from": "2026-04-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}
    report = await get(reports, Role.ADMIN)("kpis", **april)
    assert report["previous_from"] == "2026-03-02T00:00:00Z"
    kpis = {
        (k["name"], k["currency"]): (k["value"], k["previous"], k["change"]) for k in report["kpis"]
    }
    assert kpis == {
        ("marketing_response_rate", None): (0.5, None, None),
        ("new_clients", None): (1, 1, 0.0),
        ("cost_per_acquired_client", "RUB"): (1000.0, None, None),
        ("won_share", None): (1.0, 1.0, 0.0),
        ("cycle_days", None): (5.0, 10.0, -0.5),
        ("request_resolution_hours", None): (3.0, None, None),
        ("new_clients_growth", None): (0.0, None, None),
    }
    bad = await reports.get(
        "/reports/kpis",
        params={"from": "2026-04-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {issue_token(Role.ADMIN)}"},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "from"


async def test_lifecycle_churn_and_customer_value(reports: httpx.AsyncClient) -> None:
    admin = get(reports, Role.ADMIN)
    lifecycle = await admin(
        "lifecycle",
        bucket="month",
        tz="Europe/Moscow",
        **{"from": "2026-03-01T00:00:00+03:00", "to": "2026-05-01T00:00:00+03:00"},
    )
    assert [b["stages"] for b in lifecycle["buckets"]] == [
        {"awareness": 3},
        {"awareness": 2, "exploration": 1},
    ]
    may = "2026-05-01T00:00:00Z"
    churn = await admin("churn", to=may)
    # C1's touches are a day apart, then nothing for 20 days; C4 has one purchase (90-day default).
    assert churn["customers"] == 2
    assert [(r["contact_id"], r["usual_interval_days"]) for r in churn["at_risk"]] == [(C1, 1.0)]
    rfm = {r["contact_id"]: r for r in (await admin("rfm", to=may))["customers"]}
    assert {
        c: (r["recency"], r["frequency"], r["monetary"], r["rfm_group"]) for c, r in rfm.items()
    } == {C1: (3, 1, 3, "potential"), C4: (1, 1, 1, "hibernating")}
    clv = {r["contact_id"]: r for r in (await admin("clv", to=may))["customers"]}
    # 3000 + 3000 a year x 3 years x 3/5; 200 + 200 x 3 x 1/5.
    assert (clv[C1]["predicted_clv"], clv[C4]["predicted_clv"]) == ("8400.00", "320.00")
    boris = get(reports, Role.SALES_REP, BORIS)
    assert [r["contact_id"] for r in (await boris("clv", to=may))["customers"]] == [C4]
    assert [r["contact_id"] for r in (await boris("churn", to=may))["at_risk"]] == []


async def test_overview_counts_leads_overdue_tasks_and_campaigns(
    reports: httpx.AsyncClient,
) -> None:
    overview = await get(reports, Role.ADMIN)("overview")
    # C4 is in the trash and C5 merged into C2: three contacts.
    assert (overview["contacts"], overview["leads_received"], overview["tasks_overdue"]) == (
        3,
        1,
        1,
    )
    assert overview["campaigns_sent"] == 1
    boris = await get(reports, Role.SALES_REP, BORIS)("overview")
    assert (boris["contacts"], boris["leads_received"], boris["tasks_overdue"]) == (1, 0, 0)


async def test_every_report_answers_csv_and_names_a_bad_field(reports: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}
    april = {"from": "2026-04-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}
    for path, params in [
        ("overview", {}),
        ("funnel", {"pipeline_id": PIPELINE.id}),
        ("managers", {}),
        ("cycle", {}),
        ("forecast", {}),
        ("stalled", {}),
        ("campaigns", {}),
        ("events", {}),
        ("rfm", {}),
        ("clv", {}),
        ("lifecycle", april),
        ("churn", {}),
        ("requests", {}),
        ("kpis", april),
    ]:
        response = await reports.get(
            f"/reports/{path}", params={**params, "format": "csv"}, headers=headers
        )
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/csv")
        assert response.content.startswith("\ufeff".encode()), path
    for path, params, field in [
        ("lifecycle", {"tz": "Mars/Olympus"}, "tz"),
        ("managers", {"from": "2026-04-01T00:00:00"}, "from"),
        ("funnel", {}, "pipeline_id"),
        ("cycle", {"owner_id": "not-a-uuid"}, "owner_id"),
        ("managers", {"from": "2026-04-02T00:00:00Z", "to": "2026-04-01T00:00:00Z"}, "to"),
    ]:
        response = await reports.get(f"/reports/{path}", params=params, headers=headers)
        assert response.status_code in (400, 422), (path, response.text)
        assert field in response.text, (path, response.text)
