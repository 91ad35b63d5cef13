"""A generated deal history (skips, going back, lost and reopened, three currencies, a period
bounded in Moscow time) gives exactly the hand-computed funnel, cycle, forecast, stalled and
manager figures, whatever the order and however often the events arrive; a rebuild equals it."""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.gateway import UserUpdated
from crm_kernel.db import Database
from crm_kernel.events import IntegrationEvent
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.aggregates import TARGETS, combined, contribution
from crm_reports.funnel import prepared
from crm_reports.funnel.facts import DEALS, STAGES, STAYS, stays_part
from crm_reports.main import create_app
from crm_reports.managers import service as managers_service
from crm_reports.models import Base
from crm_reports.settings import ReportsSettings
from crm_reports.testing import Pipeline, caught_up, journey, user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
A, B, C, WON, LOST = (str(uuid.uuid4()) for _ in range(5))
PIPELINE = Pipeline(
    stages={
        A: (0, "10", "open"),
        B: (1, "30", "open"),
        C: (2, "60", "open"),
        WON: (3, "100", "won"),
        LOST: (4, "0", "lost"),
    }
)
ANNA, BORIS, TEAM, HEAD = (str(uuid.uuid4()) for _ in range(4))
D = {n: str(uuid.uuid4()) for n in range(1, 8)}


def history() -> list[IntegrationEvent]:
    """Seven deals; days after T0 (Mon 2 March 2026, 09:00 UTC)."""

    def deal(
        n: int, owner: str, steps: list[tuple[str, float]], **kw: Any
    ) -> list[IntegrationEvent]:
        return journey(PIPELINE, D[n], owner, steps, start=T0, **kw)

    return [
        PIPELINE.created(T0),
        user(HEAD, "head_of_sales", [TEAM]),
        user(ANNA, "sales_rep", [TEAM]),
        user(BORIS, "sales_rep", []),
        # Skips B; won at 23:24 UTC on 6 March, which is already 7 March in Moscow.
        *deal(1, ANNA, [(A, 0), (C, 2), (WON, 4.6)], amount="1000.00", source="web_form"),
        # Goes back from B to A, then on to a win.
        *deal(
            2,
            ANNA,
            [(A, 0), (B, 1), (A, 3), (B, 4), (WON, 10)],
            amount="2000.00",
            source="web_form",
        ),
        # Lost, reopened into B, won exactly at the period's end (21:00 UTC = midnight Moscow).
        *deal(
            3,
            ANNA,
            [(A, 0), (B, 2), (LOST, 6), (B, 8), (WON, 11.5)],
            amount="500.00",
            currency="USD",
            source="api",
        ),
        # Lost at 22:48 Moscow time on 6 March: before the period.
        *deal(4, BORIS, [(A, 1), (C, 2), (LOST, 4.45)], amount="700.00", source="web_form"),
        *deal(5, BORIS, [(A, 0), (B, 1)], amount="1000.00", expected_close_date="2026-04-15"),
        *deal(
            6,
            ANNA,
            [(A, 0), (C, 4)],
            amount="300.00",
            currency="USD",
            expected_close_date="2026-05-20",
        ),
        # Won on the period's last (partial) UTC day, inside it.
        *deal(7, BORIS, [(A, 0), (WON, 11.25)], amount="100.00", currency="EUR", source="api"),
    ]


@pytest.fixture
async def reports(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            yield client


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


async def publish_shuffled_twice(bus: Bus, events: list[IntegrationEvent]) -> None:
    """Every event in a random order, and a third of them again later in fresh envelopes."""
    rng = random.Random(5)
    first = [e for e in events if e.type.startswith("crm.gateway")]
    rest = [e for e in events if e not in first]
    rng.shuffle(rest)
    again = rng.sample(rest, len(rest) // 3)
    for event in [*first, *rest, *again]:
        await bus.publish(event.envelope())


def get(client: httpx.AsyncClient, token: str) -> Any:
    async def fetch(path: str, **params: Any) -> Any:
        response = await client.get(
            f"/reports/{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    return fetch


def approx(value: Any) -> Any:
    return pytest.approx(value, abs=1e-3)


async def test_generated_history_gives_the_hand_computed_figures(
    reports: httpx.AsyncClient, bus: Bus
) -> None:
    await publish_shuffled_twice(bus, history())
    await wait_until(lambda: caught_up(bus, "CRM_DEALS", "CRM_GATEWAY"), message="all applied")
    admin = get(reports, issue_token(Role.ADMIN))
    # /readyz shows how far behind the events the read models were (information, still ready).
    root = str(reports.base_url).split("/api/v1")[0]
    ready = await reports.get(f"{root}/readyz")
    assert ready.status_code == 200
    assert float(ready.json()["freshness"]["last_event_lag_seconds"]) >= 0

    funnel = {s["stage_id"]: s for s in (await admin("funnel", pipeline_id=PIPELINE.id))["stages"]}
    keys = (
        "entered",
        "moved_on",
        "won",
        "conversion_to_next",
        "conversion_to_won",
        "avg_days_in_stage",
        "median_days_in_stage",
    )
    expected_funnel = {
        # A: 8 stays (d2 twice): 2,1,1,2,1,1,4,11.25 days; every deal reached a later stage.
        A: (7, 7, 4, 1.0, 0.5714, 2.906, 1.5),
        # B: d2 (twice: 2 and 6 days), d3 (4 and 3.5 days), d5 still there.
        B: (3, 2, 2, 0.6667, 0.6667, 3.875, 3.75),
        # C: d1 2.6 days, d4 2.45 days then lost, d6 still there.
        C: (3, 2, 1, 0.3333, 0.3333, 2.525, 2.525),
        WON: (4, 0, 4, 0.0, 1.0, None, None),
        # d3 was lost for 2 days, then reopened (back to B is not further on) and won.
        LOST: (2, 1, 1, 0.0, 0.5, 2.0, 2.0),
    }
    assert {s: tuple(row[k] for k in keys) for s, row in funnel.items()} == {
        s: tuple(approx(v) if isinstance(v, float) else v for v in e)
        for s, e in expected_funnel.items()
    }

    cycle = {(g["by"], g["key"]): g for g in (await admin("cycle"))["groups"]}
    expected_cycle = {
        ("all", None): (4, 10.625, 11.3125, 11.425),  # 4.6, 10, 11.25, 11.5 days
        ("pipeline", PIPELINE.id): (4, 10.625, 11.3125, 11.425),
        ("owner", ANNA): (3, 10.0, 10.75, 11.2),  # 4.6, 10, 11.5
        ("owner", BORIS): (1, 11.25, 11.25, 11.25),
        ("source", "web_form"): (2, 7.3, 8.65, 9.46),  # 4.6, 10
        ("source", "api"): (2, 11.375, 11.4375, 11.475),  # 11.25, 11.5
    }
    assert {
        k: (g["deals_won"], g["median_days"], g["p75_days"], g["p90_days"])
        for k, g in cycle.items()
    } == {k: (n, *(approx(v) for v in vs)) for k, (n, *vs) in expected_cycle.items()}

    forecast = await admin("forecast")
    assert forecast["months"] == [
        # d5 in B (30 %; every closed deal that was in B was won).
        {
            "month": "2026-04",
            "currency": "RUB",
            "deals": 1,
            "amount": "1000.00",
            "weighted_by_probability": "300.00",
            "weighted_by_history": "1000.00",
        },
        # d6 in C (60 %; of closed deals in C, d1 won and d4 lost).
        {
            "month": "2026-05",
            "currency": "USD",
            "deals": 1,
            "amount": "300.00",
            "weighted_by_probability": "180.00",
            "weighted_by_history": "150.00",
        },
    ]
    conversions = {s["stage_id"]: s["conversion_to_won"] for s in forecast["stages"]}
    assert conversions[A] == 0.8 and conversions[B] == 1.0 and conversions[C] == 0.5

    stalled = {d["deal_id"]: d for d in (await admin("stalled"))["deals"]}
    # Both open deals have been in their stage for months; p75 of B's stays is 4.5 days, C's 2.5625.
    assert set(stalled) == {D[5], D[6]}
    assert stalled[D[5]]["usual_days"] == approx(4.5)
    assert stalled[D[6]]["usual_days"] == approx(2.5625)

    everything = {m["owner_id"]: m for m in (await admin("managers"))["managers"]}
    assert {o: _figures(m) for o, m in everything.items()} == {
        ANNA: (4, 3, 0, 1.0, {"RUB": "3000.00", "USD": "500.00"}, 10.0, 3.0, 1.0, 0.8),
        # Boris lost a deal from a band nobody wins (web_form, 700 RUB): expected 0 + 1 wins,
        # so his mix-adjusted rate equals Anna's though his raw rate is half.
        BORIS: (3, 1, 1, 0.5, {"EUR": "100.00"}, 11.25, 1.0, 1.0, 0.8),
    }
    # The week of 7-14 March in Moscow: d1 (won 02:24 on the 7th, Moscow) is in, d4 (lost
    # 22:48 on the 6th) is out, d7 (19:48 UTC on the 13th) is in, d3 (midnight on the 14th) is out.
    week = {"from": "2026-03-07T00:00:00+03:00", "to": "2026-03-14T00:00:00+03:00"}
    in_week = {m["owner_id"]: m for m in (await admin("managers", **week))["managers"]}
    assert {o: _figures(m) for o, m in in_week.items()} == {
        ANNA: (0, 2, 0, 1.0, {"RUB": "3000.00"}, 7.3, 2.0, 1.0, 0.8),
        BORIS: (0, 1, 0, 1.0, {"EUR": "100.00"}, 11.25, 1.0, 1.0, 0.8),
    }

    # A rep asking for a colleague's figures gets none of them.
    boris = get(reports, issue_token(Role.SALES_REP, BORIS))
    assert (await boris("managers", owner_id=ANNA))["managers"] == []
    assert (await boris("cycle", owner_id=ANNA))["groups"] == [
        {
            "by": "all",
            "key": None,
            "deals_won": 0,
            "median_days": None,
            "p75_days": None,
            "p90_days": None,
        }
    ]
    assert [m["currency"] for m in (await boris("forecast"))["months"]] == ["RUB"]
    assert {d["deal_id"] for d in (await boris("stalled"))["deals"]} == {D[5]}
    assert all(
        s["entered"] == 0
        for s in (await boris("funnel", pipeline_id=PIPELINE.id, owner_id=ANNA))["stages"]
    )
    # The head of sales sees the team (Anna), not Boris.
    head = get(reports, issue_token(Role.HEAD_OF_SALES, HEAD))
    assert [m["owner_id"] for m in (await head("managers"))["managers"]] == [ANNA]
    assert [m["owner_id"] for m in (await head("managers", team_id=TEAM))["managers"]] == [ANNA]

    # Boris moves into the team: from then on the head sees his figures too.
    moved = UserUpdated(**{**user(BORIS, "sales_rep", [TEAM]).model_dump(), "version": 2})
    await bus.publish(moved.envelope())

    async def head_sees_boris() -> bool:
        owners = [m["owner_id"] for m in (await head("managers"))["managers"]]
        return sorted(owners) == sorted([ANNA, BORIS])

    await wait_until(head_sees_boris, message="the head to see the rep who joined the team")


def _figures(m: dict[str, Any]) -> tuple[Any, ...]:
    return (
        m["deals_created"],
        m["deals_won"],
        m["deals_lost"],
        m["win_rate"],
        {t["currency"]: t["amount"] for t in m["revenue_won"]},
        approx(m["median_cycle_days"]) if m["median_cycle_days"] is not None else None,
        m["expected_wins"],
        m["wins_vs_expected"],
        m["mix_adjusted_win_rate"],
    )


def funnel_by_definition(
    stays: list[Any], deals: dict[str, Any], stages: dict[str, Any], start: Any, end: Any
) -> dict[str, tuple[Any, ...]]:
    """The funnel of a period straight from its definition over every stay (no prepared data).

    Per stage, distinct deals with a stay entered in the period: entered, with a finished
    one (moved on), won, with a later stay in a non-lost stage further on; the finished
    stays' average and median days.
    """
    here = [
        s
        for s in stays
        if (start is None or s.entered_at >= start) and (end is None or s.entered_at < end)
    ]

    def onward(stay: Any) -> bool:
        position = stages[stay.stage_id].position
        return any(
            later.deal_id == stay.deal_id
            and later.entered_at > stay.entered_at
            and stages[later.stage_id].kind != "lost"
            and stages[later.stage_id].position > position
            for later in stays
        )

    result = {}
    for stage in stages:
        mine = [s for s in here if s.stage_id == stage]
        entered = {s.deal_id for s in mine}
        lengths = sorted(
            (s.left_at - s.entered_at).total_seconds() / 86400 for s in mine if s.left_at
        )
        middle = [lengths[(len(lengths) - 1) // 2], lengths[len(lengths) // 2]] if lengths else []
        result[stage] = (
            len(entered),
            len({s.deal_id for s in mine if s.left_at}),
            len({d for d in entered if deals[d].status == "won"}),
            round(len({s.deal_id for s in mine if onward(s)}) / len(entered), 4)
            if entered
            else None,
            round(sum(lengths) / len(lengths), 3) if lengths else None,
            round(sum(middle) / 2, 3) if middle else None,
        )
    return result


async def test_a_periods_funnel_counts_each_deal_once_at_any_boundary(
    reports: httpx.AsyncClient, bus: Bus, db_url: str
) -> None:
    """The period's funnel comes from day aggregates and the partial days at its edges: it
    equals the definition over every stay for periods in several time zones, including
    deals that re-enter a stage inside the period (d2 re-enters A and B, d3 re-enters B)."""
    await publish_shuffled_twice(bus, history())
    await wait_until(lambda: caught_up(bus, "CRM_DEALS", "CRM_GATEWAY"), message="all applied")
    admin = get(reports, issue_token(Role.ADMIN))
    keys = ("entered", "moved_on", "won", "conversion_to_next", "avg_days_in_stage")
    # 08:00 Moscow on 3 March (05:00 UTC) to midnight Moscow on 9 March: d2's first stay in
    # B (09:00 UTC on the 3rd, a partial day) and its return to B on the 6th count once.
    week = {"from": "2026-03-03T08:00:00+03:00", "to": "2026-03-09T00:00:00+03:00"}
    got = {
        s["stage_id"]: tuple(s[k] for k in (*keys, "median_days_in_stage"))
        for s in (await admin("funnel", pipeline_id=PIPELINE.id, **week))["stages"]
    }
    # A: d2 (back on the 5th, 1 day) and d4 (on the 3rd, 1 day), both went on; d2 won.
    assert got[A] == (2, 2, 1, 1.0, 1.0, 1.0)
    # B: d2 (2 and 6 days), d3 (4 days), d5 still there; d2 and d3 went on to a win.
    assert got[B] == (3, 2, 2, 0.6667, 4.0, 4.0)

    db = Database(db_url)
    try:
        async with db.session() as session:
            stays = (await session.execute(select(STAYS))).all()
            deals = {d.id: d for d in (await session.execute(select(DEALS))).all()}
            stages = {s.id: s for s in (await session.execute(select(STAGES))).all()}
    finally:
        await db.dispose()
    periods = [
        (week["from"], week["to"]),
        ("2026-03-03T00:00:00+00:00", "2026-03-06T00:00:00+00:00"),  # whole UTC days
        ("2026-03-05T08:00:00+00:00", "2026-03-05T20:00:00+00:00"),  # inside one day
        ("2026-03-04T23:00:00+05:30", "2026-03-06T01:00:00+05:30"),  # two partial days
        ("2026-03-03T10:00:00-07:00", None),
        (None, "2026-03-06T12:45:00+05:45"),
        # Whole months (month rows) with days and partial days around them.
        ("2026-02-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00"),
        ("2026-02-14T10:00:00+03:00", "2026-04-02T12:00:00+00:00"),
        ("2026-03-01T00:00:00+00:00", None),
        (None, "2026-04-01T05:00:00+03:00"),
    ]
    for start, end in periods:
        bounds = {k: v for k, v in (("from", start), ("to", end)) if v}
        report = await admin("funnel", pipeline_id=PIPELINE.id, **bounds)
        got = {
            s["stage_id"]: (
                s["entered"],
                s["moved_on"],
                s["won"],
                s["conversion_to_next"],
                s["avg_days_in_stage"],
                s["median_days_in_stage"],
            )
            for s in report["stages"]
        }
        expected = funnel_by_definition(
            stays,
            deals,
            stages,
            datetime.fromisoformat(start) if start else None,
            datetime.fromisoformat(end) if end else None,
        )
        assert got == expected, (start, end)


async def test_a_periods_medians_are_the_same_walked_or_sorted(
    reports: httpx.AsyncClient, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For a caller who sees only some owners (a head of sales), a period holding much of
    the history walks the length-ordered index, a short one sorts its own stays and wins
    (`WALK_SHARE`): both find the same middle values."""
    await publish_shuffled_twice(bus, history())
    await wait_until(lambda: caught_up(bus, "CRM_DEALS", "CRM_GATEWAY"), message="all applied")
    await wait_until(
        lambda: _sees(reports, ANNA), message="the head of sales to see the team's rep"
    )
    head = get(reports, issue_token(Role.HEAD_OF_SALES, HEAD))
    periods = [
        {"from": "2026-03-03T08:00:00+03:00", "to": "2026-03-09T00:00:00+03:00"},
        {"from": "2026-03-02T00:00:00+00:00", "to": "2026-03-20T00:00:00+00:00"},
        {"from": "2026-03-04T23:00:00+05:30", "to": "2026-03-14T01:00:00+05:30"},
        {"from": "2026-03-05T00:00:00+00:00"},
    ]

    async def medians() -> list[Any]:
        found = []
        for period in periods:
            funnel = await head("funnel", pipeline_id=PIPELINE.id, **period)
            managers = await head("managers", **period)
            found.append(
                (
                    [s["median_days_in_stage"] for s in funnel["stages"]],
                    {m["owner_id"]: m["median_cycle_days"] for m in managers["managers"]},
                )
            )
        return found

    results = []
    for share in (0.0, math.inf):  # always walk; always sort
        monkeypatch.setattr(prepared, "WALK_SHARE", share)
        monkeypatch.setattr(managers_service, "WALK_SHARE", share)
        results.append(await medians())
    assert results[0] == results[1]
    # The week, Anna's deals: A's stay of 1 day (d2), B's of 2, 4 and 6 days (d2, d3, d2);
    # her one win in it after 4.6 days (d1).
    stages, cycles = results[0][0]
    assert stages[:2] == [1.0, 4.0]
    assert cycles == {ANNA: 4.6}


async def test_a_period_holding_the_whole_history_gives_the_all_time_figures(
    reports: httpx.AsyncClient, bus: Bus
) -> None:
    """The history lies in March 2026: periods around it, read from whole months (month
    rows), the other whole days and partial days, give exactly the all-time report."""
    await publish_shuffled_twice(bus, history())
    await wait_until(lambda: caught_up(bus, "CRM_DEALS", "CRM_GATEWAY"), message="all applied")
    admin = get(reports, issue_token(Role.ADMIN))
    all_time = (
        await admin("managers"),
        await admin("funnel", pipeline_id=PIPELINE.id),
    )
    assert all_time[0]["managers"] and all_time[1]["stages"][0]["entered"] == 7
    periods = [
        {"from": "2026-03-01T00:00:00+00:00", "to": "2026-04-01T00:00:00+00:00"},
        {"from": "2026-01-20T10:00:00+03:00", "to": "2026-05-02T12:00:00-04:00"},
        {"from": "2026-02-28T23:00:00+00:00"},
        {"to": "2026-04-01T00:30:00+05:30"},
    ]
    for period in periods:
        got = (
            await admin("managers", **period),
            await admin("funnel", pipeline_id=PIPELINE.id, **period),
        )
        assert got == all_time, period


async def _sees(reports: httpx.AsyncClient, owner: str) -> bool:
    head = get(reports, issue_token(Role.HEAD_OF_SALES, HEAD))
    return [m["owner_id"] for m in (await head("managers"))["managers"]] == [owner]


READ_MODELS = [t.name for t in Base.metadata.sorted_tables]


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.session() as session:
        return {
            t: sorted(
                tuple(str(v) for v in r)
                for r in (await session.execute(text(f"SELECT * FROM {t}"))).all()  # noqa: S608
            )
            for t in READ_MODELS
        }


async def aggregate_matches_deals(db: Database) -> bool:
    """`rm_deal_days`, `_months`, `_totals`, `_cycles`, `_mix`, `_mix_months` equal the GROUP BY
    over `rm_deals`."""
    async with db.session() as session:
        deals = (await session.execute(text("SELECT * FROM rm_deals"))).mappings().all()
        days = (await session.execute(text("SELECT * FROM rm_deal_days"))).mappings().all()
        mix = (await session.execute(text("SELECT * FROM rm_deal_mix"))).mappings().all()
        totals = (await session.execute(text("SELECT * FROM rm_deal_totals"))).mappings().all()
        cycles = (await session.execute(text("SELECT * FROM rm_deal_cycles"))).mappings().all()
        months = (await session.execute(text("SELECT * FROM rm_deal_months"))).mappings().all()
        mix_months = (
            (await session.execute(text("SELECT * FROM rm_deal_mix_months"))).mappings().all()
        )
    expected: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(dict)
    for deal in deals:
        state = dict(deal)
        for column in ("created_at", "closed_at"):
            if isinstance(state[column], str):
                state[column] = datetime.fromisoformat(state[column]).replace(tzinfo=UTC)
        for (table, key), part in contribution(state, 1).items():
            row = expected[(table, tuple(str(k) for k in key))]
            for name, value in part.items():
                row[name] = row.get(name, 0) + value
    stored: dict[tuple[Any, ...], dict[str, Any]] = {}
    for d in days:
        key = ("days", (str(d["day"]), d["owner_id"], d["pipeline_id"], d["currency"]))
        stored[key] = {k: d[k] for k in ("created", "won", "lost")}
        stored[key]["won_amount"] = Decimal(str(d["won_amount"]))
    for d in months:
        key = ("months", (str(d["month"]), d["owner_id"], d["pipeline_id"], d["currency"]))
        stored[key] = {k: d[k] for k in ("created", "won", "lost")}
        stored[key]["won_amount"] = Decimal(str(d["won_amount"]))
    for m in mix_months:
        key = (
            "mix_months",
            (str(m["month"]), m["owner_id"], m["pipeline_id"], m["source"], m["amount_band"]),
        )
        stored[key] = {"won": m["won"], "lost": m["lost"]}
    for t in totals:
        key = ("totals", (t["owner_id"], t["pipeline_id"], t["currency"]))
        stored[key] = {k: t[k] for k in ("created", "won", "lost")}
        stored[key]["won_amount"] = Decimal(str(t["won_amount"]))
    for c in cycles:
        stored[("cycles", (c["owner_id"], c["pipeline_id"], str(c["bucket"])))] = {"won": c["won"]}
    for m in mix:
        key = ("mix", (m["owner_id"], m["pipeline_id"], m["source"], m["amount_band"]))
        stored[key] = {"won": m["won"], "lost": m["lost"]}
    wanted = {
        (target, key): {c: row.get(c, 0) for c in TARGETS[target][2]}
        for (target, key), row in expected.items()
    }
    return stored == {k: v for k, v in wanted.items() if any(v.values())}


async def funnel_facts_match_stays(db: Database) -> bool:
    """`rm_funnel_facts`, `rm_stay_lengths`, `rm_funnel_days`, `rm_funnel_months`,
    `rm_stay_length_days`, `rm_stay_length_months` equal the deals' parts computed afresh
    from every stay."""
    async with db.session() as session:
        stays = (await session.execute(select(STAYS))).mappings().all()
        deals = {d.id: d for d in (await session.execute(select(DEALS))).all()}
        stages = {s.id: (s.position, s.kind) for s in (await session.execute(select(STAGES))).all()}
        stored = {
            name: (await session.execute(select(TARGETS[name][0]))).mappings().all()
            for name in (
                "funnel",
                "lengths",
                "funnel_days",
                "funnel_months",
                "length_days",
                "length_months",
            )
        }
    by_deal: dict[str, list[Any]] = defaultdict(list)
    for stay in stays:
        by_deal[stay["deal_id"]].append(stay)
    assert all(s["owner_id"] == deals[s["deal_id"]].owner_id for s in stays)
    parts = [
        stays_part(deals[d].owner_id, deals[d].status, rows, stages, 1)
        for d, rows in by_deal.items()
        if d in deals
    ]
    expected = {
        (name, key): {c: part.get(c, 0) for c in TARGETS[name][2]}
        for (name, key), part in combined(*parts).items()
        if any(part.values())
    }
    got = {
        (name, tuple(r[k] for k in TARGETS[name][1])): {c: r[c] for c in TARGETS[name][2]}
        for name, rows in stored.items()
        for r in rows
    }
    filled = all(stored.values())
    return filled and got == expected


async def test_rebuild_from_the_streams_equals_the_incremental_read_models(
    reports: httpx.AsyncClient, bus: Bus, db_url: str
) -> None:
    await publish_shuffled_twice(bus, history())
    db = Database(db_url)
    try:
        await wait_until(lambda: caught_up(bus, "CRM_DEALS", "CRM_GATEWAY"), message="build")
        incremental = await snapshot(db)
        assert len(incremental["rm_deals"]) == 7 and incremental["rm_deal_days"]
        assert await aggregate_matches_deals(db)
        assert await funnel_facts_match_stays(db)
        # Damage the read models: the rebuild must restore them from the events alone.
        async with db.transaction() as session:
            await session.execute(text("DELETE FROM rm_stage_stays"))
            await session.execute(text("UPDATE rm_deal_days SET won = won + 5"))
            await session.execute(text("UPDATE rm_funnel_facts SET onward = onward + 1"))
        admin = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}
        assert (await reports.post("/reports/rebuild", headers=admin)).status_code == 202

        async def rebuilt() -> bool:
            return await caught_up(bus, "CRM_DEALS", "CRM_GATEWAY") and (
                await snapshot(db) == incremental
            )

        await wait_until(rebuilt, timeout=30, message="the replay to rebuild the same read models")
    finally:
        await db.dispose()


async def test_two_replicas_applying_at_once_keep_the_aggregates_exact(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)), serve_in_process(create_app(settings)):
        await publish_shuffled_twice(bus, history())
        # Deal batches of the two replicas take turns (one lock): allow for a loaded machine.
        await wait_until(
            lambda: caught_up(bus, "CRM_DEALS", "CRM_GATEWAY"), timeout=30, message="applied"
        )
        db = Database(db_url)
        try:
            assert await aggregate_matches_deals(db)
            assert await funnel_facts_match_stays(db)
            async with db.session() as session:
                deals = (await session.execute(text("SELECT count(*) FROM rm_deals"))).scalar()
            assert deals == 7
        finally:
            await db.dispose()
