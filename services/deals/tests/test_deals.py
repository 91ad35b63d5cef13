"""Deals through the HTTP API: create, read, change with If-Match, move rules, bad input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from crm_deals.testing import User, create_deal, default_pipeline, new_user, wait_for_events
from crm_kernel.auth import Role

SPEC_FIELDS = {
    "id",
    "title",
    "contact_id",
    "company_id",
    "pipeline_id",
    "stage_id",
    "owner_id",
    "amount",
    "currency",
    "expected_close_date",
    "status",
    "lost_reason",
    "source_campaign_id",
    "version",
    "created_at",
}


async def test_created_deal_has_spec_fields_and_starts_in_the_first_stage(
    api: httpx.AsyncClient,
) -> None:
    rep = new_user(Role.SALES_REP)
    pipeline = await default_pipeline(api, rep)
    response = await api.post(
        "/deals",
        json={
            "title": "  Website redesign ",
            "amount": "150000.5",
            "currency": "rub",
            "expected_close_date": "2026-12-31",
            "contact_id": str(uuid.uuid4()),
        },
        headers=rep.headers,
    )
    assert response.status_code == 201, response.text
    deal = response.json()
    assert set(deal) >= SPEC_FIELDS
    assert deal["title"] == "Website redesign"
    assert deal["amount"] == "150000.50" and deal["currency"] == "RUB"
    assert deal["owner_id"] == rep.id and deal["status"] == "open" and deal["version"] == 1
    assert deal["pipeline_id"] == pipeline["id"]
    assert deal["stage_id"] == pipeline["stages"][0]["id"]
    assert deal["contact_name"] is None  # not (yet) known from contact events
    assert response.headers["etag"] == '"1"'
    fetched = await api.get(f"/deals/{deal['id']}", headers=rep.headers)
    assert fetched.json() == deal
    jpy = await create_deal(api, rep, amount=1500, currency="JPY")
    assert jpy["amount"] == "1500"


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"currency": "RUR"}, "currency"),
    ({"currency": "XYZ"}, "currency"),
    ({"amount": "-1"}, "amount"),
    ({"amount": "abc"}, "amount"),
    ({"amount": "10.005", "currency": "RUB"}, "amount"),
    ({"amount": "10.5", "currency": "JPY"}, "amount"),
    ({"title": ""}, "title"),
    ({"expected_close_date": "31.12.2026"}, "expected_close_date"),
    ({"stage_id": "not-a-uuid"}, "stage_id"),
    ({"pipeline_id": str(uuid.uuid4())}, "pipeline_id"),
    ({"unknown": 1}, "unknown"),
]


async def test_bad_deal_input_is_422_problem_naming_the_field(
    api: httpx.AsyncClient, admin: User
) -> None:
    for payload, field in BAD_INPUT:
        response = await api.post("/deals", json={"title": "T", **payload}, headers=admin.headers)
        assert response.status_code == 422, (payload, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], payload
    assert (await api.get("/deals", headers=admin.headers)).json()["items"] == []


async def test_stage_of_another_pipeline_is_refused_naming_stage_id(
    api: httpx.AsyncClient, admin: User
) -> None:
    other = await api.post("/pipelines", json={"name": "Other"}, headers=admin.headers)
    foreign_stage = other.json()["stages"][1]["id"]
    created = await api.post(
        "/deals", json={"title": "T", "stage_id": foreign_stage}, headers=admin.headers
    )
    assert created.status_code == 422
    assert created.json()["errors"][0]["field"] == "stage_id"
    deal = await create_deal(api, admin)
    moved = await api.post(
        f"/deals/{deal['id']}/move", json={"stage_id": foreign_stage}, headers=admin.headers
    )
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["field"] == "stage_id"
    assert (await api.get(f"/deals/{deal['id']}", headers=admin.headers)).json() == deal


async def test_patch_with_stale_if_match_is_412_and_changes_nothing(
    api: httpx.AsyncClient, admin: User
) -> None:
    deal = await create_deal(api, admin, amount="100")
    first = await api.patch(
        f"/deals/{deal['id']}",
        json={"amount": "200", "currency": "EUR"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert first.status_code == 200, first.text
    assert first.json()["amount"] == "200.00" and first.json()["version"] == 2
    assert first.headers["etag"] == '"2"'
    stale = await api.patch(
        f"/deals/{deal['id']}", json={"amount": "300"}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    stale_move = await api.post(
        f"/deals/{deal['id']}/win", headers={**admin.headers, "If-Match": '"1"'}
    )
    assert stale_move.status_code == 412
    now = (await api.get(f"/deals/{deal['id']}", headers=admin.headers)).json()
    assert now["amount"] == "200.00" and now["status"] == "open" and now["version"] == 2
    bad = await api.patch(f"/deals/{deal['id']}", json={"title": None}, headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "title"
    garbage = await api.patch(
        f"/deals/{deal['id']}", json={"title": "X"}, headers={**admin.headers, "If-Match": "v1"}
    )
    assert garbage.status_code == 400 and garbage.json()["errors"][0]["field"] == "If-Match"


async def test_concurrent_moves_of_one_deal_cannot_both_win(
    api: httpx.AsyncClient, admin: User
) -> None:
    pipeline = await default_pipeline(api, admin)
    deal = await create_deal(api, admin)
    targets = [s["id"] for s in pipeline["stages"][1:4]]
    responses = await asyncio.gather(
        *(
            api.post(
                f"/deals/{deal['id']}/move",
                json={"stage_id": stage_id},
                headers={**admin.headers, "If-Match": '"1"'},
            )
            for stage_id in targets
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 412, 412], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    history = (await api.get(f"/deals/{deal['id']}/history", headers=admin.headers)).json()
    assert len(history) == 2
    assert history[-1]["to_stage_id"] == winner["stage_id"]


async def test_lose_needs_a_listed_reason_or_other_with_a_comment(
    api: httpx.AsyncClient, admin: User
) -> None:
    reasons = (await api.get("/deals/lost-reasons", headers=admin.headers)).json()["reasons"]
    assert "price" in reasons and reasons[-1] == "other"
    deal = await create_deal(api, admin)
    url = f"/deals/{deal['id']}/lose"
    unknown = await api.post(url, json={"reason": "astrology"}, headers=admin.headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "reason"
    bare_other = await api.post(url, json={"reason": "other"}, headers=admin.headers)
    assert bare_other.status_code == 422 and bare_other.json()["errors"][0]["field"] == "comment"
    lost = await api.post(
        url,
        json={"reason": "other", "comment": "Chose to build it in-house"},
        headers=admin.headers,
    )
    assert lost.status_code == 200
    body = lost.json()
    assert body["status"] == "lost" and body["lost_reason"] == "other"
    assert body["lost_comment"] == "Chose to build it in-house" and body["closed_at"]
    again = await api.post(url, json={"reason": "price"}, headers=admin.headers)
    assert again.status_code == 409
    moved = await api.post(
        f"/deals/{deal['id']}/move",
        json={"stage_id": deal["stage_id"]},
        headers=admin.headers,
    )
    assert moved.status_code == 409


async def test_moving_to_the_lost_stage_asks_for_lose_and_to_won_wins(
    api: httpx.AsyncClient, admin: User, nats_url: str
) -> None:
    pipeline = await default_pipeline(api, admin)
    won, lost = pipeline["stages"][4]["id"], pipeline["stages"][5]["id"]
    deal = await create_deal(api, admin)
    to_lost = await api.post(
        f"/deals/{deal['id']}/move", json={"stage_id": lost}, headers=admin.headers
    )
    assert to_lost.status_code == 422 and to_lost.json()["errors"][0]["field"] == "stage_id"
    to_won = await api.post(
        f"/deals/{deal['id']}/move", json={"stage_id": won}, headers=admin.headers
    )
    assert to_won.status_code == 200 and to_won.json()["status"] == "won"
    events = await wait_for_events(
        nats_url,
        lambda evs: any(e["type"] == "crm.deals.deal.won" for e in evs),
        "deal.won",
    )
    assert [e["type"] for e in events if e["subject"] == deal["id"]] == [
        "crm.deals.deal.created",
        "crm.deals.deal.stage_changed",
        "crm.deals.deal.won",
    ]


async def test_owner_change_publishes_owner_changed_with_the_previous_owner(
    api: httpx.AsyncClient, admin: User, nats_url: str
) -> None:
    rep = new_user(Role.SALES_REP)
    deal = await create_deal(api, admin)
    changed = await api.patch(
        f"/deals/{deal['id']}",
        json={"owner_id": rep.id, "title": "Renamed"},
        headers=admin.headers,
    )
    assert changed.status_code == 200 and changed.json()["owner_id"] == rep.id
    events = await wait_for_events(
        nats_url,
        lambda evs: any(e["type"] == "crm.deals.deal.owner_changed" for e in evs),
        "owner_changed",
    )
    owner_changed = next(e for e in events if e["type"] == "crm.deals.deal.owner_changed")
    assert owner_changed["data"]["previous_owner_id"] == admin.id
    assert owner_changed["data"]["owner_id"] == rep.id
    assert owner_changed["data"]["version"] == 2
    updated = next(e for e in events if e["type"] == "crm.deals.deal.updated")
    assert updated["data"]["changed_fields"] == ["title"]


async def test_unknown_deal_is_404_and_no_token_is_401(api: httpx.AsyncClient, admin: User) -> None:
    assert (await api.get(f"/deals/{uuid.uuid4()}", headers=admin.headers)).status_code == 404
    assert (await api.get("/deals")).status_code == 401
    assert (await api.post(f"/deals/{uuid.uuid4()}/win", headers=admin.headers)).status_code == 404


async def test_deal_list_pages_through_every_deal_once(api: httpx.AsyncClient, admin: User) -> None:
    ids = {(await create_deal(api, admin, title=f"D{i}"))["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/deals", params=params, headers=admin.headers)).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    winner = seen[0]
    await api.post(f"/deals/{winner}/win", headers=admin.headers)
    won = await api.get("/deals", params={"status": "won"}, headers=admin.headers)
    assert [d["id"] for d in won.json()["items"]] == [winner]
    still_open = await api.get("/deals", params={"status": "open"}, headers=admin.headers)
    assert len(still_open.json()["items"]) == 4
    campaign = str(uuid.uuid4())
    attributed = await create_deal(api, admin, source_campaign_id=campaign)
    by_campaign = await api.get(
        "/deals", params={"source_campaign_id": campaign}, headers=admin.headers
    )
    assert [d["id"] for d in by_campaign.json()["items"]] == [attributed["id"]]


async def test_reopen_goes_back_to_the_stage_it_closed_from_or_the_one_named(
    api: httpx.AsyncClient, admin: User
) -> None:
    pipeline = await default_pipeline(api, admin)
    stages = {s["name"]: s["id"] for s in pipeline["stages"]}
    deal = await create_deal(api, admin, stage_id=stages["Meeting"])
    url = f"/deals/{deal['id']}"
    assert (await api.post(f"{url}/reopen", headers=admin.headers)).status_code == 409  # open
    await api.post(f"{url}/lose", json={"reason": "timing"}, headers=admin.headers)
    reopened = (await api.post(f"{url}/reopen", headers=admin.headers)).json()
    assert reopened["stage_id"] == stages["Meeting"] and reopened["status"] == "open"
    assert reopened["lost_reason"] is None and reopened["closed_at"] is None
    await api.post(f"{url}/win", headers=admin.headers)
    to_won = await api.post(
        f"{url}/reopen", json={"stage_id": stages["Lost"]}, headers=admin.headers
    )
    assert to_won.status_code == 422 and to_won.json()["errors"][0]["field"] == "stage_id"
    named = await api.post(
        f"{url}/reopen", json={"stage_id": stages["First call"]}, headers=admin.headers
    )
    assert named.status_code == 200 and named.json()["stage_id"] == stages["First call"]


async def test_changing_currency_rechecks_the_amount_decimals(
    api: httpx.AsyncClient, admin: User
) -> None:
    deal = await create_deal(api, admin, amount="10.50", currency="EUR")
    to_yen = await api.patch(
        f"/deals/{deal['id']}", json={"currency": "JPY"}, headers=admin.headers
    )
    assert to_yen.status_code == 422 and to_yen.json()["errors"][0]["field"] == "amount"
    both = await api.patch(
        f"/deals/{deal['id']}", json={"currency": "jpy", "amount": 1050}, headers=admin.headers
    )
    assert both.status_code == 200
    assert (both.json()["amount"], both.json()["currency"]) == ("1050", "JPY")
    cleared = await api.patch(f"/deals/{deal['id']}", json={"amount": None}, headers=admin.headers)
    assert cleared.status_code == 200 and cleared.json()["amount"] is None
    assert cleared.json()["version"] == 3
