"""Login, refresh-token rotation, logout, session checks and login throttling over HTTP."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

import crm_gateway
from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, Api, running_gateway
from crm_gateway.users.models import User
from crm_gateway.users.service import bootstrap_admin
from crm_kernel.auth import Role, TokenKeys
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations
from crm_kernel.testing import TEST_JWT_SECRET, free_port, issue_token

MakeSettings = Callable[..., GatewaySettings]
PROBLEM = "application/problem+json"


async def login(api: Api, email: str, password: str) -> tuple[int, dict, dict]:
    response = await api.http.post(
        "/api/v1/auth/login", json={"email": email, "password": password}
    )
    return response.status_code, response.json(), dict(response.headers)


async def me(api: Api, access_token: str) -> int:
    return (await api.http.get("/api/v1/auth/me", headers=api.bearer(access_token))).status_code


async def refresh(api: Api, refresh_token: str) -> tuple[int, dict]:
    response = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    return response.status_code, response.json()


async def test_login_returns_a_token_pair_the_kernel_verifies(api: Api) -> None:
    status, body, headers = await login(api, "Admin@Example.com", ADMIN_PASSWORD)
    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert len(body["refresh_token"]) >= 40
    principal = TokenKeys(secret=TEST_JWT_SECRET).verify(body["access_token"])
    assert principal.role is Role.ADMIN
    assert principal.email == ADMIN_EMAIL
    assert principal.session_id
    assert principal.team_ids == ()


async def test_wrong_password_and_unknown_email_get_the_same_401_problem(api: Api) -> None:
    wrong_password = await login(api, ADMIN_EMAIL, "not-the-password")
    unknown_email = await login(api, "nobody@example.com", "not-the-password")
    for status, body, headers in (wrong_password, unknown_email):
        assert status == 401
        assert headers["content-type"] == PROBLEM
        assert body["type"] == "/problems/unauthorized"
        assert body["detail"] == "Wrong e-mail or password."
    assert wrong_password[1]["detail"] == unknown_email[1]["detail"]


async def test_me_returns_the_callers_user(api: Api) -> None:
    created = await api.create_user("rep@example.com")
    token = (await api.login("rep@example.com"))["access_token"]
    response = await api.http.get("/api/v1/auth/me", headers=api.bearer(token))
    assert response.status_code == 200
    assert response.json() == created


async def test_refresh_rotates_the_pair_within_the_session(api: Api) -> None:
    first = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, second = await refresh(api, first["refresh_token"])
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    keys = TokenKeys(secret=TEST_JWT_SECRET)
    assert (
        keys.verify(second["access_token"]).session_id
        == keys.verify(first["access_token"]).session_id
    )
    status, third = await refresh(api, second["refresh_token"])
    assert status == 200, third
    assert await me(api, third["access_token"]) == 200


async def test_reused_refresh_token_revokes_the_session(api: Api) -> None:
    first = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, second = await refresh(api, first["refresh_token"])
    assert status == 200

    # The old token again: someone copied it. The whole family ends.
    status, body = await refresh(api, first["refresh_token"])
    assert status == 401
    assert "already used" in body["detail"]
    status, _ = await refresh(api, second["refresh_token"])
    assert status == 401
    assert await me(api, second["access_token"]) == 401
    assert await me(api, first["access_token"]) == 401
    # Other sessions of the same user are untouched.
    other = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert await me(api, other["access_token"]) == 200


async def test_unknown_refresh_token_is_refused(api: Api) -> None:
    status, body = await refresh(api, "made-up-token")
    assert status == 401
    assert body["status"] == 401


async def test_logout_revokes_the_session(api: Api) -> None:
    pair = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    headers = api.bearer(pair["access_token"])
    assert (await api.http.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert await me(api, pair["access_token"]) == 401
    assert (await api.http.get("/api/v1/users", headers=headers)).status_code == 401
    status, _ = await refresh(api, pair["refresh_token"])
    assert status == 401


async def test_token_without_a_gateway_session_is_refused(api: Api) -> None:
    # Signed with the right key but naming no session the gateway opened.
    response = await api.http.get("/api/v1/auth/me", headers=api.bearer(issue_token(Role.ADMIN)))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def test_deactivating_a_user_ends_their_sessions(api: Api) -> None:
    user = await api.create_user("leaver@example.com")
    pair = await api.login("leaver@example.com")
    assert await me(api, pair["access_token"]) == 200
    response = await api.http.patch(
        f"/api/v1/users/{user['id']}",
        json={"is_active": False},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 200, response.text
    assert await me(api, pair["access_token"]) == 401
    status, _ = await refresh(api, pair["refresh_token"])
    assert status == 401
    status, body, _ = await login(api, "leaver@example.com", USER_PASSWORD)
    assert status == 401
    assert body["detail"] == "Wrong e-mail or password."


async def test_new_password_ends_old_sessions_and_works_for_login(api: Api) -> None:
    user = await api.create_user("rep@example.com")
    pair = await api.login("rep@example.com")
    response = await api.http.patch(
        f"/api/v1/users/{user['id']}",
        json={"password": "a-brand-new-password"},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 200, response.text
    assert await me(api, pair["access_token"]) == 401
    assert (await login(api, "rep@example.com", USER_PASSWORD))[0] == 401
    assert (await login(api, "rep@example.com", "a-brand-new-password"))[0] == 200


async def test_repeated_failures_throttle_the_account_but_not_others(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(CRM_LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
    async with running_gateway(settings) as api:
        await api.create_user("other@example.com")
        for _ in range(3):
            assert (await login(api, ADMIN_EMAIL, "wrong-password"))[0] == 401

        # Over the limit: refused even with the right password, until the window passes.
        status, body, headers = await login(api, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert status == 429
        assert headers["content-type"] == PROBLEM
        assert body["type"] == "/problems/rate-limited"
        assert 0 < int(headers["retry-after"]) <= 900
        # Another account is not locked out by it.
        assert (await login(api, "other@example.com", USER_PASSWORD))[0] == 200


async def test_parallel_wrong_guesses_get_no_more_tries_than_the_limit(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(CRM_LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
    async with running_gateway(settings) as api:
        results = await asyncio.gather(
            *(login(api, ADMIN_EMAIL, f"wrong-password-{i}") for i in range(8))
        )
    # Each attempt is counted before its password is checked, atomically.
    assert sorted(status for status, _, _ in results) == [401] * 3 + [429] * 5


async def test_failures_from_one_address_are_limited_across_accounts(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(CRM_LOGIN_MAX_FAILURES_PER_ACCOUNT=10, CRM_LOGIN_MAX_FAILURES_PER_IP=4)
    async with running_gateway(settings) as api:
        for i in range(4):
            assert (await login(api, f"guess{i}@example.com", "wrong-password"))[0] == 401
        status, _, headers = await login(api, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert status == 429
        assert int(headers["retry-after"]) > 0


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="TEST_REDIS_URL not set")
async def test_login_throttle_is_shared_by_replicas_through_redis(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(
        REDIS_URL=os.environ["TEST_REDIS_URL"],
        CRM_REDIS_PREFIX=f"test:{uuid.uuid4().hex}:",
        CRM_LOGIN_MAX_FAILURES_PER_ACCOUNT=2,
    )
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        assert (await login(first, ADMIN_EMAIL, "wrong-password"))[0] == 401
        assert (await login(second, ADMIN_EMAIL, "wrong-password"))[0] == 401
        status, _, headers = await login(first, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert status == 429
        assert int(headers["retry-after"]) > 0


async def test_logins_go_on_when_the_limiter_store_is_down(make_settings: MakeSettings) -> None:
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}")
    async with running_gateway(settings) as api:
        assert (await login(api, ADMIN_EMAIL, "wrong-password"))[0] == 401
        assert (await login(api, ADMIN_EMAIL, ADMIN_PASSWORD))[0] == 200


async def test_rs256_tokens_verify_with_the_public_key(make_settings: MakeSettings) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = make_settings(CRM_JWT_SECRET="", CRM_JWT_PRIVATE_KEY=private_pem)
    async with running_gateway(settings) as api:
        pair = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert await me(api, pair["access_token"]) == 200
    # What every other service does: verify with the public key only.
    principal = TokenKeys(public_key=public_pem).verify(pair["access_token"])
    assert principal.role is Role.ADMIN


async def admins(db_url: str) -> int:
    db = Database(db_url)
    try:
        async with db.session() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(User).where(User.email == ADMIN_EMAIL)
                )
                or 0
            )
    finally:
        await db.dispose()


async def test_admin_bootstrap_is_idempotent_across_starts(
    make_settings: MakeSettings, db_url: str
) -> None:
    settings = make_settings()
    for _ in range(2):
        async with running_gateway(settings) as api:
            await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert await admins(db_url) == 1


async def test_replicas_bootstrapping_at_once_create_one_admin(
    make_settings: MakeSettings, db_url: str
) -> None:
    settings = make_settings()
    db = Database(db_url)
    try:
        await migrate(db, service_migrations(crm_gateway.__file__))
        created = await asyncio.gather(*(bootstrap_admin(db, settings) for _ in range(4)))
    finally:
        await db.dispose()
    assert sum(user is not None for user in created) == 1
    assert await admins(db_url) == 1


async def test_no_admin_is_bootstrapped_without_a_password(
    make_settings: MakeSettings, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_gateway(make_settings(CRM_ADMIN_PASSWORD="")) as api:
        assert (await login(api, ADMIN_EMAIL, ""))[0] == 422
    assert await admins(db_url) == 0
    assert "CRM_ADMIN_PASSWORD is not set" in caplog.text


def test_settings_read_the_documented_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CRM_ADMIN_EMAIL", "boss@example.com")
    monkeypatch.setenv("CONTACTS_URL", "http://contacts:8001/")
    monkeypatch.setenv("UPSTREAM_TIMEOUT", "2.5")
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))
    settings = GatewaySettings()
    assert settings.admin_email == "boss@example.com"
    assert settings.upstream_urls()["contacts"] == "http://contacts:8001"
    assert settings.upstream_urls()["deals"] == "http://127.0.0.1:8002"
    assert settings.upstream_timeout == 2.5
    assert settings.port == 8000
    assert settings.login_max_failures_per_account == 5
    assert settings.login_max_failures_per_ip == 20
    assert settings.login_window_seconds == 900
