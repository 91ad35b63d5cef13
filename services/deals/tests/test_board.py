"""The kanban board: per-stage pages, counts and totals per currency, filters, contact names."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from crm_deals.testing import User, create_deal, default_pipeline, new_user
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactCreated, ContactUpdated
from crm_kernel.testing import wait_until


async def _board(api: httpx.AsyncClient, user: User, pipeline_id: str, **params: Any) -> Any:
    response = await api.get(f"/pipelines/{pipeline_id}/board", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_board_totals_are_per_currency_and_weighted_by_probability(
    api: httpx.AsyncClient, admin: User
) -> None:
    pipeline = await default_pipeline(api, admin)
    proposal = pipeline["stages"][2]["id"]  # 50 %
    for amount, currency in (("100.10", "RUB"), ("0.15", "RUB"), ("33", "EUR"), ("7", "JPY")):
        await create_deal(api, admin, amount=amount, currency=currency, stage_id=proposal)
    await create_deal(api, admin, stage_id=proposal, currency="EUR")  # no amount yet
    await create_deal(api, admin, amount="5", currency="USD")  # another stage
    board = await _board(api, admin, pipeline["id"])
    column = next(c for c in board["stages"] if c["stage"]["id"] == proposal)
    assert column["count"] == 5
    assert column["totals"] == [
        {"currency": "EUR", "amount": "33.00", "weighted_amount": "16.50"},
        {"currency": "JPY", "amount": "7", "weighted_amount": "4"},  # 3.5 rounds half-up
        {"currency": "RUB", "amount": "100.25", "weighted_amount": "50.13"},  # 50.125
    ]
    assert [c["count"] for c in board["stages"]] == [1, 0, 5, 0, 0, 0]
    assert [c["stage"]["name"] for c in board["stages"]] == [s["name"] for s in pipeline["stages"]]


async def test_each_stage_pages_by_its_own_cursor(api: httpx.AsyncClient, admin: User) -> None:
    pipeline = await default_pipeline(api, admin)
    first, second = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    in_first = {(await create_deal(api, admin, title=f"F{i}"))["id"] for i in range(5)}
    in_second = {(await create_deal(api, admin, stage_id=second))["id"] for _ in range(2)}
    board = await _board(api, admin, pipeline["id"], per_stage=2)
    columns = {c["stage"]["id"]: c for c in board["stages"]}
    assert len(columns[first]["deals"]) == 2 and columns[first]["count"] == 5
    assert {d["id"] for d in columns[second]["deals"]} == in_second
    assert columns[second]["next_cursor"] is None
    seen = [d["id"] for d in columns[first]["deals"]]
    cursor = columns[first]["next_cursor"]
    while cursor:
        page = await api.get(
            f"/pipelines/{pipeline['id']}/board/stages/{first}",
            params={"cursor": cursor, "limit": 2},
            headers=admin.headers,
        )
        assert page.status_code == 200, page.text
        seen += [d["id"] for d in page.json()["deals"]]
        cursor = page.json()["next_cursor"]
    assert sorted(seen) == sorted(in_first) and len(seen) == 5
    bad = await api.get(
        f"/pipelines/{pipeline['id']}/board/stages/{first}",
        params={"cursor": "garbage"},
        headers=admin.headers,
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cursor"
    foreign = await api.get(
        f"/pipelines/{pipeline['id']}/board/stages/{uuid.uuid4()}", headers=admin.headers
    )
    assert foreign.status_code == 404
    assert (
        await api.get(f"/pipelines/{uuid.uuid4()}/board", headers=admin.headers)
    ).status_code == 404


async def test_board_filters_by_owner_team_and_period(
    api: httpx.AsyncClient, admin: User, add_users: Callable[..., Awaitable[None]]
) -> None:
    team = str(uuid.uuid4())
    rep_a, rep_b = new_user(Role.SALES_REP, team), new_user(Role.SALES_REP)
    await add_users(rep_a, rep_b)
    pipeline = await default_pipeline(api, admin)
    early = await create_deal(api, admin, owner_id=rep_a.id)
    created = datetime.fromisoformat(early["created_at"])
    # The period boundary must fall strictly between two creations.
    boundary = await wait_until(
        lambda: (now := datetime.now(UTC)) > created and now, message="the clock to move on"
    )
    late_a = await create_deal(api, admin, owner_id=rep_a.id)
    late_b = await create_deal(api, admin, owner_id=rep_b.id)

    async def ids(**params: Any) -> set[str]:
        board = await _board(api, admin, pipeline["id"], **params)
        return {d["id"] for c in board["stages"] for d in c["deals"]}

    assert await ids(owner_id=rep_a.id) == {early["id"], late_a["id"]}
    assert await ids(team_id=team) == {early["id"], late_a["id"]}
    assert await ids(created_from=boundary.isoformat()) == {late_a["id"], late_b["id"]}
    assert await ids(created_to=boundary.isoformat()) == {early["id"]}
    naive = await api.get(
        f"/pipelines/{pipeline['id']}/board",
        params={"created_from": "2026-01-01T00:00:00"},
        headers=admin.headers,
    )
    assert naive.status_code == 400 and naive.json()["errors"][0]["field"] == "created_from"


async def test_cards_show_the_contact_name_once_its_event_arrives(
    api: httpx.AsyncClient, admin: User, bus: Bus
) -> None:
    contact_id = str(uuid.uuid4())
    deal = await create_deal(api, admin, contact_id=contact_id)
    assert deal["contact_name"] is None  # unknown ids are accepted: events may lag
    event = ContactCreated(
        id=contact_id,
        first_name="Анна",
        last_name="Петрова",
        owner_id=admin.id,
        version=1,
        created_at="2026-11-24T10:00:00+00:00",
        updated_at="2026-11-24T10:00:00+00:00",
    )
    envelope = event.envelope()
    await bus.publish(envelope)
    # Redelivered past JetStream's de-duplication: applied once, no error.
    await bus.publish(envelope, {"Nats-Msg-Id": f"{envelope.id}-again"})

    async def named() -> bool:
        got = await api.get(f"/deals/{deal['id']}", headers=admin.headers)
        return got.json()["contact_name"] == "Анна Петрова"

    await wait_until(named, timeout=30, message="contact name from the replica")
    pipeline = await default_pipeline(api, admin)
    board = await _board(api, admin, pipeline["id"])
    assert board["stages"][0]["deals"][0]["contact_name"] == "Анна Петрова"

    async def acked() -> bool:
        info = await bus.js.consumer_info("CRM_CONTACTS", "deals")
        return info.num_pending == 0 and info.num_ack_pending == 0

    await wait_until(acked, timeout=30, message="both deliveries acked")
    dead = await bus.js.stream_info("CRM_DEAD_LETTERS")
    assert dead.state.messages == 0


async def test_a_renamed_contact_shows_its_new_name_and_a_late_old_event_changes_nothing(
    api: httpx.AsyncClient, admin: User, bus: Bus
) -> None:
    contact_id = str(uuid.uuid4())
    deal = await create_deal(api, admin, contact_id=contact_id)
    fields = {
        "id": contact_id,
        "owner_id": admin.id,
        "created_at": "2026-11-24T10:00:00+00:00",
        "updated_at": "2026-11-24T10:00:00+00:00",
    }
    await bus.publish(ContactCreated(first_name="Анна", version=1, **fields).envelope())
    await bus.publish(
        ContactUpdated(first_name="Анна", last_name="Иванова", version=2, **fields).envelope()
    )
    # The first version again, late (a redelivery or a replay): must not undo the rename.
    await bus.publish(ContactCreated(first_name="Анна", version=1, **fields).envelope())

    async def renamed_and_settled() -> bool:
        got = await api.get(f"/deals/{deal['id']}", headers=admin.headers)
        info = await bus.js.consumer_info("CRM_CONTACTS", "deals")
        return (
            got.json()["contact_name"] == "Анна Иванова"
            and info.num_pending == 0
            and info.num_ack_pending == 0
        )

    await wait_until(
        renamed_and_settled, timeout=30, message="the rename, with every event applied"
    )
    got = await api.get(f"/deals/{deal['id']}", headers=admin.headers)
    assert got.json()["contact_name"] == "Анна Иванова"


async def test_running_totals_match_a_count_of_the_deals_after_every_kind_of_change(
    api: httpx.AsyncClient, admin: User, add_users: Callable[..., Awaitable[None]]
) -> None:
    rep = new_user(Role.SALES_REP)
    await add_users(rep)
    pipeline = await default_pipeline(api, admin)
    stages = [s["id"] for s in pipeline["stages"]]
    extra = await api.post(
        f"/pipelines/{pipeline['id']}/stages",
        json={"name": f"Extra {uuid.uuid4().hex[:6]}", "probability": 30},
        headers=admin.headers,
    )
    assert extra.status_code in (200, 201), extra.text
    doomed = next(s["id"] for s in extra.json()["stages"] if s["id"] not in stages)
    deals = [
        await create_deal(api, admin, amount="10.10", currency="RUB"),
        await create_deal(api, admin, amount="5", currency="EUR", stage_id=stages[1]),
        await create_deal(api, admin, currency="USD", stage_id=doomed),
        await create_deal(api, rep, amount="7.77", currency="RUB", stage_id=doomed),
        await create_deal(api, rep, amount="1", currency="RUB"),
    ]

    async def call(method: str, url: str, **body: Any) -> None:
        response = await api.request(method, url, json=body or None, headers=admin.headers)
        assert response.status_code == 200, response.text

    await call("PATCH", f"/deals/{deals[0]['id']}", amount="20.20", currency="EUR")
    await call("PATCH", f"/deals/{deals[1]['id']}", owner_id=rep.id, amount=None)
    await call("PATCH", f"/deals/{deals[2]['id']}", amount="3")
    await call("POST", f"/deals/{deals[0]['id']}/move", stage_id=stages[2])
    await call("POST", f"/deals/{deals[4]['id']}/win")
    await call("POST", f"/deals/{deals[1]['id']}/lose", reason="price")
    await call("POST", f"/deals/{deals[1]['id']}/reopen")
    deleted = await api.delete(
        f"/pipelines/{pipeline['id']}/stages/{doomed}",
        params={"target_stage_id": stages[3]},
        headers=admin.headers,
    )
    assert deleted.status_code == 200, deleted.text
    # With a period the board counts the deals themselves; without, it sums running totals.
    for user in (admin, rep):
        kept = await _board(api, user, pipeline["id"])
        counted = await _board(api, user, pipeline["id"], created_from="2000-01-01T00:00:00Z")
        assert [(c["count"], c["totals"]) for c in kept["stages"]] == [
            (c["count"], c["totals"]) for c in counted["stages"]
        ]
    admin_board = await _board(api, admin, pipeline["id"])
    assert sum(c["count"] for c in admin_board["stages"]) == 5
    meeting = next(c for c in admin_board["stages"] if c["stage"]["id"] == stages[3])
    assert meeting["count"] == 2
    assert meeting["totals"] == [
        {"currency": "RUB", "amount": "7.77", "weighted_amount": "5.44"},
        {"currency": "USD", "amount": "3.00", "weighted_amount": "2.10"},
    ]
