"""Offboarding: deactivates, cuts sessions and API keys at once, publishes UserOffboarded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from crm_gateway.testing import Api
from crm_kernel.events import Envelope
from crm_kernel.testing import wait_until

ReadEvents = Callable[[], Awaitable[list[Envelope]]]
PROBLEM = "application/problem+json"


async def _team(api: Api, name: str) -> str:
    response = await api.http.post(
        "/api/v1/teams", json={"name": name}, headers=await api.admin_headers()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _key(api: Api, user_id: str) -> str:
    response = await api.http.post(
        "/api/v1/api-keys",
        json={"name": "sync", "scopes": ["contacts:read"], "user_id": user_id},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def _offboard(api: Api, user_id: str, successor_id: Any, headers: dict) -> Any:
    return await api.http.post(
        f"/api/v1/users/{user_id}/offboard", json={"successor_id": successor_id}, headers=headers
    )


async def test_head_of_sales_offboards_a_team_member(api: Api, gateway_events: ReadEvents) -> None:
    north = await _team(api, "North")
    head = await api.user_headers("head@example.com", "head_of_sales", team_ids=[north])
    leaver = await api.create_user("leaver@example.com", team_ids=[north])
    heir = await api.create_user("heir@example.com", team_ids=[north])
    leaver_token = (await api.login("leaver@example.com"))["access_token"]
    key = await _key(api, leaver["id"])
    # Both work before.
    assert (
        await api.http.get("/api/v1/auth/me", headers=api.bearer(leaver_token))
    ).status_code == 200

    response = await _offboard(api, leaver["id"], heir["id"], head)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["is_active"] is False
    assert body["successor_id"] == heir["id"]
    assert body["revoked_api_keys"] == 1
    me = await api.http.get("/api/v1/auth/me", headers=api.bearer(leaver_token))
    assert me.status_code == 401
    by_key = await api.http.get("/api/v1/contacts", headers=api.bearer(key))
    assert by_key.status_code == 401
    login = await api.http.post(
        "/api/v1/auth/login", json={"email": "leaver@example.com", "password": "user-password-0001"}
    )
    assert login.status_code == 401

    async def offboarded() -> list[Envelope]:
        return [e for e in await gateway_events() if e.type == "crm.gateway.user.offboarded"]

    events = await wait_until(offboarded, message="the offboarded event")
    assert len(events) == 1
    assert events[0].data["user_id"] == leaver["id"]
    assert events[0].data["successor_id"] == heir["id"]
    assert (
        events[0].data["actor_id"]
        == (await api.http.get("/api/v1/auth/me", headers=head)).json()["id"]
    )
    # Directories learn the deactivation too.
    updates = [
        e
        for e in await gateway_events()
        if e.type == "crm.gateway.user.updated" and e.data["id"] == leaver["id"]
    ]
    assert updates and updates[-1].data["is_active"] is False

    again = await _offboard(api, leaver["id"], heir["id"], await api.admin_headers())
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM


async def test_who_may_offboard_and_to_whom(api: Api) -> None:
    north = await _team(api, "North")
    south = await _team(api, "South")
    head = await api.user_headers("head@example.com", "head_of_sales", team_ids=[north])
    rep_headers = await api.user_headers("rep@example.com", team_ids=[north])
    mate = await api.create_user("mate@example.com", team_ids=[north])
    stranger = await api.create_user("stranger@example.com", team_ids=[south])
    gone = await api.create_user("gone@example.com", is_active=False, team_ids=[north])
    admin = await api.admin_headers()

    assert (await _offboard(api, mate["id"], stranger["id"], rep_headers)).status_code == 403
    # A head of sales does not see other teams' people: 404, as if absent.
    assert (await _offboard(api, stranger["id"], mate["id"], head)).status_code == 404
    # ...nor hand records to someone outside their teams.
    outside = await _offboard(api, mate["id"], stranger["id"], head)
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["field"] == "successor_id"
    same = await _offboard(api, mate["id"], mate["id"], admin)
    assert same.status_code == 422
    inactive = await _offboard(api, mate["id"], gone["id"], admin)
    assert inactive.status_code == 422
    unknown = await _offboard(api, mate["id"], "no-such-user", admin)
    assert unknown.status_code == 422
    assert (await _offboard(api, "no-such-user", mate["id"], admin)).status_code == 404
    missing = await api.http.post(f"/api/v1/users/{mate['id']}/offboard", json={}, headers=admin)
    assert missing.status_code == 422
    # Nothing of that changed the user.
    read = await api.http.get(f"/api/v1/users/{mate['id']}", headers=admin)
    assert read.json()["is_active"] is True
