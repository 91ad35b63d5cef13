"""Who sees what: the permission matrix over deals, their history, the board and its totals."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import httpx

from crm_deals.testing import User, create_deal, default_pipeline, new_user
from crm_kernel.auth import Role


async def test_each_role_sees_exactly_its_deals_everywhere(
    api: httpx.AsyncClient, admin: User, add_users: Callable[..., Awaitable[None]]
) -> None:
    team, other_team = str(uuid.uuid4()), str(uuid.uuid4())
    head = new_user(Role.HEAD_OF_SALES, team)
    rep_a, rep_b = new_user(Role.SALES_REP, team), new_user(Role.SALES_REP, team)
    outsider = new_user(Role.SALES_REP, other_team)
    marketer = new_user(Role.MARKETER)
    await add_users(head, rep_a, rep_b, outsider, marketer, admin)
    pipeline = await default_pipeline(api, admin)
    amounts = {rep_a.id: 100, rep_b.id: 200, outsider.id: 400, head.id: 800}
    deals = {
        owner: (await create_deal(api, admin, owner_id=owner, amount=amount, currency="RUB"))["id"]
        for owner, amount in amounts.items()
    }
    everyone = set(amounts)
    matrix = {
        "rep_a": (rep_a, {rep_a.id}),
        "rep_b": (rep_b, {rep_b.id}),
        "outsider": (outsider, {outsider.id}),
        "head": (head, {head.id, rep_a.id, rep_b.id}),
        "marketer": (marketer, everyone),
        "admin": (admin, everyone),
    }
    for who, (user, owners) in matrix.items():
        visible = {deals[o] for o in owners}
        for owner, deal_id in deals.items():
            expected = 200 if owner in owners else 404
            one = await api.get(f"/deals/{deal_id}", headers=user.headers)
            assert one.status_code == expected, (who, owner)
            history = await api.get(f"/deals/{deal_id}/history", headers=user.headers)
            assert history.status_code == expected, (who, owner)
        listed = await api.get("/deals", headers=user.headers)
        assert {d["id"] for d in listed.json()["items"]} == visible, who
        board = (await api.get(f"/pipelines/{pipeline['id']}/board", headers=user.headers)).json()
        first = board["stages"][0]
        assert {d["id"] for d in first["deals"]} == visible, who
        assert first["count"] == len(visible), who
        total = sum(amounts[o] for o in owners)
        assert first["totals"] == [
            {
                "currency": "RUB",
                "amount": f"{total}.00",
                "weighted_amount": str((Decimal(total) / 10).quantize(Decimal("0.01"))),
            }
        ], who
        assert sum(column["count"] for column in board["stages"]) == len(visible), who
        column = await api.get(
            f"/pipelines/{pipeline['id']}/board/stages/{first['stage']['id']}",
            headers=user.headers,
        )
        assert column.json()["count"] == len(visible), who
        assert {d["id"] for d in column.json()["deals"]} == visible, who


async def test_writes_follow_visibility_and_assignment_rules(
    api: httpx.AsyncClient, admin: User, add_users: Callable[..., Awaitable[None]]
) -> None:
    team = str(uuid.uuid4())
    head = new_user(Role.HEAD_OF_SALES, team)
    rep_a, rep_b = new_user(Role.SALES_REP, team), new_user(Role.SALES_REP, team)
    outsider = new_user(Role.SALES_REP)
    marketer = new_user(Role.MARKETER)
    await add_users(head, rep_a, rep_b, outsider)
    pipeline = await default_pipeline(api, admin)
    second = pipeline["stages"][1]["id"]
    a_deal = await create_deal(api, rep_a)
    b_deal = await create_deal(api, rep_b)

    async def status(method: str, url: str, user: User, body: object = None) -> int:
        response = await api.request(method, url, json=body, headers=user.headers)
        return response.status_code

    # Someone else's deal is invisible: 404 on every write, not 403.
    assert await status("POST", f"/deals/{b_deal['id']}/move", rep_a, {"stage_id": second}) == 404
    assert await status("PATCH", f"/deals/{b_deal['id']}", rep_a, {"title": "Mine"}) == 404
    assert await status("POST", f"/deals/{b_deal['id']}/win", outsider) == 404
    # Marketers read, never write.
    assert (
        await status("POST", f"/deals/{a_deal['id']}/move", marketer, {"stage_id": second}) == 403
    )
    assert await status("POST", "/deals", marketer, {"title": "M"}) == 403
    # A rep owns only their own deals.
    assert await status("POST", "/deals", rep_a, {"title": "X", "owner_id": rep_b.id}) == 403
    assert await status("PATCH", f"/deals/{a_deal['id']}", rep_a, {"owner_id": rep_b.id}) == 403
    # A head of sales works the team's deals and assigns within the team only.
    assert await status("POST", f"/deals/{a_deal['id']}/move", head, {"stage_id": second}) == 200
    assert await status("PATCH", f"/deals/{a_deal['id']}", head, {"owner_id": outsider.id}) == 403
    assert await status("PATCH", f"/deals/{a_deal['id']}", head, {"owner_id": rep_b.id}) == 200
    assert await status("POST", "/deals", head, {"title": "H", "owner_id": rep_a.id}) == 201
    assert await status("POST", "/deals", head, {"title": "H", "owner_id": outsider.id}) == 403
    # An admin assigns anyone.
    assert await status("PATCH", f"/deals/{b_deal['id']}", admin, {"owner_id": outsider.id}) == 200
    assert await status("GET", f"/deals/{b_deal['id']}", outsider) == 200
    assert await status("GET", f"/deals/{b_deal['id']}", rep_b) == 404
    # Nothing the refused calls tried was written.
    a_now = (await api.get(f"/deals/{a_deal['id']}", headers=admin.headers)).json()
    assert a_now["owner_id"] == rep_b.id and a_now["stage_id"] == second and a_now["version"] == 3
