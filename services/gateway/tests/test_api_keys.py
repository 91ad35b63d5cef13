"""API keys: shown once, stored hashed, scoped, acting as a user, revoked at once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from crm_gateway.apikeys.models import ApiKey
from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import Api, Echo, running_gateway
from crm_kernel.auth import Role, TokenKeys
from crm_kernel.db import Database
from crm_kernel.testing import TEST_JWT_SECRET, wait_until

MakeSettings = Callable[..., GatewaySettings]
PROBLEM = "application/problem+json"


async def create_key(api: Api, user_id: str, scopes: list[str]) -> dict[str, Any]:
    response = await api.http.post(
        "/api/v1/api-keys",
        json={"name": "website forms", "scopes": scopes, "user_id": user_id},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def key_header(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(
    make_settings: MakeSettings, db_url: str
) -> None:
    async with running_gateway(make_settings()) as api:
        rep = await api.create_user("rep@example.com")
        created = await create_key(api, rep["id"], ["contacts:read"])
        read = await api.http.get(
            f"/api/v1/api-keys/{created['id']}", headers=await api.admin_headers()
        )
        listed = await api.http.get("/api/v1/api-keys", headers=await api.admin_headers())
    key = created["key"]
    assert key.startswith("crm_") and len(key) >= 40
    assert key.startswith(created["prefix"])
    assert read.status_code == 200
    assert "key" not in read.json()
    assert [k["id"] for k in listed.json()["items"]] == [created["id"]]
    assert "key" not in listed.json()["items"][0]
    db = Database(db_url)
    try:
        async with db.session() as session:
            stored = (await session.scalars(select(ApiKey))).one()
    finally:
        await db.dispose()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(v) for v in vars(stored).values()}


async def test_a_key_acts_as_its_user_within_its_scopes_only(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        rep = await api.create_user("rep@example.com")
        key = (await create_key(api, rep["id"], ["contacts:read", "leads:write"]))["key"]
        as_bearer = await api.http.get("/api/v1/contacts", headers=key_header(key))
        as_header = await api.http.get("/api/v1/contacts?limit=1", headers={"X-API-Key": key})
        lead = await api.http.post(
            "/api/v1/leads", json={"first_name": "A"}, headers=key_header(key)
        )
        write = await api.http.post(
            "/api/v1/contacts", json={"first_name": "A"}, headers=key_header(key)
        )
        exports = await api.http.get("/api/v1/exports", headers=key_header(key))
        users = await api.http.get("/api/v1/users", headers=key_header(key))
        me = await api.http.get("/api/v1/auth/me", headers={"X-API-Key": key})
    assert (as_bearer.status_code, as_header.status_code, lead.status_code) == (200, 200, 200)
    for refused in (write, exports, users, me):
        assert refused.status_code == 403
        assert refused.headers["content-type"] == PROBLEM
    assert "contacts:write" in write.json()["detail"]
    assert [r["path"] for r in echo.received] == [
        "/api/v1/contacts",
        "/api/v1/contacts",
        "/api/v1/leads",
    ]
    for seen in echo.received:
        assert "x-api-key" not in seen["headers"]
        token = seen["headers"]["authorization"].removeprefix("Bearer ")
        principal = TokenKeys(secret=TEST_JWT_SECRET).verify(token)
        assert principal.user_id == rep["id"]
        assert principal.role is Role.SALES_REP
        assert principal.scopes == frozenset({"contacts:read", "leads:write"})


async def test_a_revoked_key_stops_working_at_once(make_settings: MakeSettings, echo: Echo) -> None:
    settings = make_settings(CONTACTS_URL=echo.url, CRM_SESSION_CHECK_SECONDS=0.5)
    async with running_gateway(settings) as api, running_gateway(settings) as other:
        rep = await api.create_user("rep@example.com")
        created = await create_key(api, rep["id"], ["contacts:read"])
        headers = key_header(created["key"])
        assert (await api.http.get("/api/v1/contacts", headers=headers)).status_code == 200
        assert (await other.http.get("/api/v1/contacts", headers=headers)).status_code == 200
        revoked = await api.http.delete(
            f"/api/v1/api-keys/{created['id']}", headers=await api.admin_headers()
        )
        assert revoked.status_code == 204
        refused = await api.http.get("/api/v1/contacts", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM

        async def other_refuses() -> bool:
            response = await other.http.get("/api/v1/contacts", headers=headers)
            return response.status_code == 401

        # Another replica within its check interval.
        await wait_until(other_refuses, timeout=10, message="the other replica to refuse")
        read = await api.http.get(
            f"/api/v1/api-keys/{created['id']}", headers=await api.admin_headers()
        )
    assert read.json()["revoked_at"] is not None
    assert read.json()["last_used_at"] is not None


async def test_a_token_minted_for_a_key_is_refused_from_outside(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        rep = await api.create_user("rep@example.com")
        key = (await create_key(api, rep["id"], ["contacts:read"]))["key"]
        assert (await api.http.get("/api/v1/contacts", headers=key_header(key))).status_code == 200
        minted = echo.received[0]["headers"]["authorization"]
        direct = await api.http.get("/api/v1/contacts", headers={"Authorization": minted})
    assert direct.status_code == 401
    assert len(echo.received) == 1


async def test_keys_have_their_own_budget_and_guessing_keys_spends_the_login_budget(
    make_settings: MakeSettings, echo: Echo
) -> None:
    settings = make_settings(
        CONTACTS_URL=echo.url, CRM_RATE_LIMIT_READS="2/minute", CRM_RATE_LIMIT_LOGIN="3/minute"
    )
    async with running_gateway(settings) as api:
        rep = await api.create_user("rep@example.com")
        key = (await create_key(api, rep["id"], ["contacts:read"]))["key"]
        statuses = [
            (await api.http.get("/api/v1/contacts", headers=key_header(key))).status_code
            for _ in range(3)
        ]
        # The user the key acts as still has a budget of their own.
        rep_token = (await api.login("rep@example.com"))["access_token"]
        as_user = await api.http.get("/api/v1/contacts", headers=api.bearer(rep_token))
        # Two logins spent one each; the first wrong key the third.
        guesses = [
            (
                await api.http.get("/api/v1/contacts", headers=key_header(f"crm_guess-{i}"))
            ).status_code
            for i in range(2)
        ]
    assert statuses == [200, 200, 429]
    assert as_user.status_code == 200
    assert guesses == [401, 429]


async def test_keys_need_known_scopes_and_an_active_user(api: Api) -> None:
    rep = await api.create_user("rep@example.com", is_active=False)
    admin = await api.admin_headers()
    bad_scope = await api.http.post(
        "/api/v1/api-keys",
        json={"name": "x", "scopes": ["contacts:destroy"], "user_id": rep["id"]},
        headers=admin,
    )
    inactive = await api.http.post(
        "/api/v1/api-keys",
        json={"name": "x", "scopes": ["contacts:read"], "user_id": rep["id"]},
        headers=admin,
    )
    not_admin = await api.http.get(
        "/api/v1/api-keys", headers=await api.user_headers("other@example.com")
    )
    assert bad_scope.status_code == 422
    assert bad_scope.json()["errors"][0]["field"] == "scopes"
    assert inactive.status_code == 422
    assert inactive.json()["errors"][0]["field"] == "user_id"
    assert not_admin.status_code == 403
