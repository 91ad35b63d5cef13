"""Users and teams (admin only): validation, conflicts, versions, pagination and their events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import pytest

from crm_gateway.testing import USER_PASSWORD, Api
from crm_kernel.auth import TokenKeys
from crm_kernel.events import Envelope
from crm_kernel.testing import TEST_JWT_SECRET, wait_until

ReadEvents = Callable[[], Awaitable[list[Envelope]]]
CountPending = Callable[[], Awaitable[int]]
PROBLEM = "application/problem+json"


def new_user(email: str = "rep@example.com", **fields: object) -> dict[str, object]:
    return {
        "email": email,
        "full_name": "Rita Rep",
        "role": "sales_rep",
        "password": USER_PASSWORD,
        **fields,
    }


def new_user_with(fields: dict[str, object]) -> dict[str, object]:
    return {**new_user(), **fields}


def drained(pending_outbox: CountPending) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await pending_outbox() == 0

    return check


async def create_team(api: Api, name: str) -> dict:
    response = await api.http.post(
        "/api/v1/teams", json={"name": name}, headers=await api.admin_headers()
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_admin_creates_a_user_and_reads_it_back(api: Api) -> None:
    headers = await api.admin_headers()
    team = await create_team(api, "North")
    response = await api.http.post(
        "/api/v1/users",
        json=new_user("Rita.Rep@Example.COM", team_ids=[team["id"]]),
        headers=headers,
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {
        "id",
        "email",
        "full_name",
        "role",
        "team_ids",
        "is_active",
        "version",
        "created_at",
        "updated_at",
    }
    assert user["email"] == "rita.rep@example.com"
    assert user["team_ids"] == [team["id"]]
    assert user["is_active"] is True
    assert user["version"] == 1
    assert datetime.fromisoformat(user["created_at"]).utcoffset() is not None
    assert response.headers["location"] == f"/api/v1/users/{user['id']}"
    assert response.headers["etag"] == '"1"'
    fetched = await api.http.get(f"/api/v1/users/{user['id']}", headers=headers)
    assert fetched.status_code == 200
    assert fetched.json() == user
    # The teams reach the user's access token.
    token = (await api.login("rita.rep@example.com"))["access_token"]
    assert TokenKeys(secret=TEST_JWT_SECRET).verify(token).team_ids == (team["id"],)


async def test_sales_rep_may_not_manage_users_or_teams(api: Api) -> None:
    rep = await api.user_headers("rep@example.com")
    for method, path, body in (
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", new_user("x@example.com")),
        ("GET", "/api/v1/teams", None),
        ("POST", "/api/v1/teams", {"name": "Mine"}),
    ):
        response = await api.http.request(method, path, json=body, headers=rep)
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM


async def test_users_need_a_token(api: Api) -> None:
    response = await api.http.get("/api/v1/users")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"role": "owner"}, "role"),
        ({"full_name": ""}, "full_name"),
        ({"is_admin": True}, "is_admin"),
    ],
)
async def test_bad_input_is_a_422_problem_naming_the_field(
    api: Api, fields: dict[str, object], field: str
) -> None:
    response = await api.http.post(
        "/api/v1/users", json=new_user_with(fields), headers=await api.admin_headers()
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_duplicate_email_is_a_409_naming_the_field(api: Api) -> None:
    await api.create_user("rep@example.com")
    response = await api.http.post(
        "/api/v1/users", json=new_user("REP@example.com"), headers=await api.admin_headers()
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == "email"


async def test_unknown_team_is_a_422_naming_team_ids(api: Api) -> None:
    response = await api.http.post(
        "/api/v1/users",
        json=new_user(team_ids=["00000000-0000-0000-0000-000000000000"]),
        headers=await api.admin_headers(),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "team_ids"


async def test_stale_if_match_is_a_412_and_the_change_is_not_applied(api: Api) -> None:
    headers = await api.admin_headers()
    user = await api.create_user("rep@example.com")
    url = f"/api/v1/users/{user['id']}"

    changed = await api.http.patch(
        url, json={"full_name": "Rita R."}, headers={**headers, "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.headers["etag"] == '"2"'

    stale = await api.http.patch(
        url, json={"full_name": "Lost update"}, headers={**headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    stale_body = await api.http.patch(
        url, json={"full_name": "Lost update", "version": 1}, headers=headers
    )
    assert stale_body.status_code == 412
    assert (await api.http.get(url, headers=headers)).json()["full_name"] == "Rita R."


async def test_changing_only_teams_bumps_the_version(api: Api) -> None:
    headers = await api.admin_headers()
    team = await create_team(api, "South")
    user = await api.create_user("rep@example.com")
    response = await api.http.patch(
        f"/api/v1/users/{user['id']}", json={"team_ids": [team["id"]]}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["team_ids"] == [team["id"]]
    assert response.json()["version"] == 2


async def test_null_is_refused_for_a_required_field(api: Api) -> None:
    user = await api.create_user("rep@example.com")
    response = await api.http.patch(
        f"/api/v1/users/{user['id']}", json={"role": None}, headers=await api.admin_headers()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "role"


async def test_the_last_active_admin_cannot_be_deactivated(api: Api) -> None:
    headers = await api.admin_headers()
    me = (await api.http.get("/api/v1/auth/me", headers=headers)).json()
    response = await api.http.patch(
        f"/api/v1/users/{me['id']}", json={"is_active": False}, headers=headers
    )
    assert response.status_code == 409
    response = await api.http.patch(
        f"/api/v1/users/{me['id']}", json={"role": "marketer"}, headers=headers
    )
    assert response.status_code == 409


async def test_users_list_pages_with_a_cursor_and_filters(api: Api) -> None:
    headers = await api.admin_headers()
    for name in ("a", "b", "c"):
        await api.create_user(f"{name}@example.com")
    await api.create_user("m@example.com", role="marketer")

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, "sort": "email"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.http.get("/api/v1/users", params=params, headers=headers)).json()
        seen += [user["email"] for user in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == 5  # with the admin

    reps = await api.http.get("/api/v1/users", params={"role": "sales_rep"}, headers=headers)
    assert [u["email"] for u in reps.json()["items"]] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    bad = await api.http.get("/api/v1/users", params={"sort": "password_hash"}, headers=headers)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "sort"


async def test_user_events_appear_on_the_bus_exactly_once(
    api: Api, gateway_events: ReadEvents, pending_outbox: CountPending
) -> None:
    user = await api.create_user("rep@example.com")
    await api.http.patch(
        f"/api/v1/users/{user['id']}",
        json={"role": "head_of_sales"},
        headers=await api.admin_headers(),
    )

    async def of_user() -> list[Envelope]:
        return [e for e in await gateway_events() if e.data.get("id") == user["id"]]

    await wait_until(drained(pending_outbox), message="outbox drained")
    events = await wait_until(of_user, message="user events on the bus")
    assert [e.type for e in events] == ["crm.gateway.user.created", "crm.gateway.user.updated"]
    created, updated = events
    assert created.data == {
        "id": user["id"],
        "email": "rep@example.com",
        "full_name": user["full_name"],
        "role": "sales_rep",
        "team_ids": [],
        "is_active": True,
        "version": 1,
    }
    assert updated.data["role"] == "head_of_sales"
    assert updated.data["version"] == 2
    assert created.subject == user["id"]
    admin = (await api.http.get("/api/v1/auth/me", headers=await api.admin_headers())).json()
    assert created.actor == admin["id"]
    assert all("password" not in key for e in events for key in e.data)


async def test_teams_are_created_renamed_and_published(
    api: Api, gateway_events: ReadEvents, pending_outbox: CountPending
) -> None:
    headers = await api.admin_headers()
    team = await create_team(api, "North")
    assert team["version"] == 1
    assert (await api.http.post("/api/v1/teams", json={"name": "North"}, headers=headers)).json()[
        "errors"
    ][0]["field"] == "name"

    url = f"/api/v1/teams/{team['id']}"
    renamed = await api.http.patch(
        url, json={"name": "North-East"}, headers={**headers, "If-Match": '"1"'}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["version"] == 2
    stale = await api.http.patch(url, json={"name": "Nope"}, headers={**headers, "If-Match": "1"})
    assert stale.status_code == 412
    assert (await api.http.get(url, headers=headers)).json()["name"] == "North-East"

    await create_team(api, "Alpha")
    page = (await api.http.get("/api/v1/teams", params={"limit": 1}, headers=headers)).json()
    assert [t["name"] for t in page["items"]] == ["Alpha"]
    page = (
        await api.http.get(
            "/api/v1/teams", params={"limit": 1, "cursor": page["next_cursor"]}, headers=headers
        )
    ).json()
    assert [t["name"] for t in page["items"]] == ["North-East"]
    assert page["next_cursor"] is None

    await wait_until(drained(pending_outbox), message="outbox drained")
    events = [e for e in await gateway_events() if e.data.get("id") == team["id"]]
    assert [(e.type, e.data["name"], e.data["version"]) for e in events] == [
        ("crm.gateway.team.created", "North", 1),
        ("crm.gateway.team.updated", "North-East", 2),
    ]


async def test_unknown_user_and_team_are_404_problems(api: Api) -> None:
    headers = await api.admin_headers()
    for path in ("/api/v1/users/nope", "/api/v1/teams/nope"):
        response = await api.http.get(path, headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
