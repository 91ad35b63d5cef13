"""Rate limits over HTTP: budgets per caller and kind of request, headers, 429, shared through Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from crm_gateway.ratelimit import Rate
from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import ADMIN_EMAIL, ADMIN_PASSWORD, Echo, running_gateway
from crm_kernel.testing import free_port

MakeSettings = Callable[..., GatewaySettings]
PROBLEM = "application/problem+json"
REDIS_URL = os.environ.get("TEST_REDIS_URL")


def remaining(response: httpx.Response) -> int:
    return int(response.headers["ratelimit-remaining"])


async def test_a_limit_of_n_per_minute_allows_n_and_refuses_the_next_with_retry_after(
    make_settings: MakeSettings,
) -> None:
    async with running_gateway(make_settings(CRM_RATE_LIMIT_READS="3/minute")) as api:
        headers = await api.admin_headers()
        allowed = [await api.http.get("/api/v1/auth/me", headers=headers) for _ in range(3)]
        refused = await api.http.get("/api/v1/auth/me", headers=headers)
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [remaining(r) for r in allowed] == [2, 1, 0]
    for response in allowed:
        assert response.headers["ratelimit-limit"] == "3"
        assert 0 <= int(response.headers["ratelimit-reset"]) <= 60
        assert response.headers["ratelimit-policy"] == "3;w=60"
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "/problems/rate-limited"
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert remaining(refused) == 0
    assert refused.headers["ratelimit-limit"] == "3"


async def test_one_users_spent_budget_leaves_other_users_and_other_budgets_alone(
    make_settings: MakeSettings, echo: Echo
) -> None:
    settings = make_settings(CRM_RATE_LIMIT_READS="2/minute", CONTACTS_URL=echo.url)
    async with running_gateway(settings) as api:
        admin = await api.admin_headers()
        rep = await api.user_headers("rep@example.com")
        for _ in range(2):
            assert (await api.http.get("/api/v1/contacts", headers=admin)).status_code == 200
        assert (await api.http.get("/api/v1/contacts", headers=admin)).status_code == 429
        # No account-wide or address-wide lock-out: the rep (same IP) reads on.
        rep_read = await api.http.get("/api/v1/contacts", headers=rep)
        assert rep_read.status_code == 200
        assert remaining(rep_read) == 1
        # The admin's writes have their own budget.
        write = await api.http.post("/api/v1/contacts", json={"first_name": "A"}, headers=admin)
        assert write.status_code == 200
        assert int(write.headers["ratelimit-limit"]) == 300
    assert len(echo.received) == 4


async def test_limit_headers_are_on_errors_and_replace_a_services_own(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(DEALS_URL=echo.url)) as api:
        headers = await api.admin_headers()
        forwarded = await api.http.get("/api/v1/deals/d1?status=409", headers=headers)
        unknown = await api.http.get("/api/v1/spaceships", headers=headers)
        anonymous = await api.http.get("/api/v1/deals")
    assert forwarded.status_code == 409
    # The echo service says RateLimit-Limit: 100; the client sees the gateway's budget.
    assert forwarded.headers.get_list("ratelimit-limit") == ["1200"]
    assert remaining(forwarded) == 1199
    assert (unknown.status_code, remaining(unknown)) == (404, 1198)
    # Without a token the caller is its address, with a budget of its own.
    assert (anonymous.status_code, remaining(anonymous)) == (401, 1199)


async def test_callers_without_a_valid_token_are_limited_per_address(
    make_settings: MakeSettings,
) -> None:
    async with running_gateway(make_settings(CRM_RATE_LIMIT_READS="2/minute")) as api:
        forged = api.bearer("not.a.jwt")
        assert (await api.http.get("/api/v1/auth/me")).status_code == 401
        assert (await api.http.get("/api/v1/auth/me", headers=forged)).status_code == 401
        refused = await api.http.get("/api/v1/auth/me")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        # A logged-in user from the same address has their own budget.
        admin = await api.admin_headers()
        assert (await api.http.get("/api/v1/auth/me", headers=admin)).status_code == 200
        # Health checks are never limited.
        assert (await api.http.get("/healthz")).status_code == 200


async def test_login_and_refresh_share_a_budget_per_address(make_settings: MakeSettings) -> None:
    async with running_gateway(make_settings(CRM_RATE_LIMIT_LOGIN="2/minute")) as api:
        pair = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        refreshed = await api.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 200
        assert remaining(refreshed) == 0
        again = await api.http.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert again.status_code == 429
        assert again.headers["content-type"] == PROBLEM
        # The tokens already issued keep working: only logins are spent.
        me = await api.http.get(
            "/api/v1/auth/me", headers=api.bearer(refreshed.json()["access_token"])
        )
        assert me.status_code == 200


async def test_exports_have_their_own_budget(make_settings: MakeSettings, echo: Echo) -> None:
    settings = make_settings(CRM_RATE_LIMIT_EXPORTS="1/hour", CONTACTS_URL=echo.url)
    async with running_gateway(settings) as api:
        headers = await api.admin_headers()
        first = await api.http.post("/api/v1/exports", json={}, headers=headers)
        second = await api.http.get("/api/v1/exports/e1", headers=headers)
        read = await api.http.get("/api/v1/contacts", headers=headers)
    assert first.status_code == 200
    assert first.headers["ratelimit-policy"] == "1;w=3600"
    assert second.status_code == 429
    assert 3500 < int(second.headers["retry-after"]) <= 3600
    assert read.status_code == 200


async def test_a_budget_set_to_zero_is_not_limited(make_settings: MakeSettings) -> None:
    async with running_gateway(make_settings(CRM_RATE_LIMIT_READS="0")) as api:
        headers = await api.admin_headers()
        response = await api.http.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200
    assert "ratelimit-limit" not in response.headers


async def test_requests_go_on_unlimited_when_the_limiter_store_is_down(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}")
    async with running_gateway(settings) as api:
        headers = await api.admin_headers()
        response = await api.http.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200
    assert "ratelimit-limit" not in response.headers


@pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL not set")
async def test_a_limit_holds_across_two_gateways_sharing_redis(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(
        REDIS_URL=REDIS_URL,
        CRM_REDIS_PREFIX=f"test:{uuid.uuid4().hex}:",
        CRM_RATE_LIMIT_READS="4/minute",
    )
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        headers = await first.admin_headers()
        statuses = [
            (await gateway.http.get("/api/v1/auth/me", headers=headers)).status_code
            for gateway in (first, second, first, second, first, second)
        ]
        refused = await second.http.get("/api/v1/auth/me", headers=headers)
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_budgets_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRM_RATE_LIMIT_READS", "100/30s")
    monkeypatch.setenv("CRM_RATE_LIMIT_EXPORTS", "0")
    rates = GatewaySettings().rate_limits()
    assert rates["reads"] == Rate(100, 30)
    assert rates["exports"].unlimited
    assert rates["login"] == Rate(60, 60)
    assert rates["writes"] == Rate(300, 60)
    monkeypatch.setenv("CRM_RATE_LIMIT_WRITES", "lots")
    with pytest.raises(ValueError, match="not a rate"):
        GatewaySettings()
