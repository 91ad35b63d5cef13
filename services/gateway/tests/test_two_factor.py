"""Two-factor authentication: optional per user, enforceable per role, codes good once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyotp
from sqlalchemy import select

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import USER_PASSWORD, Api, running_gateway
from crm_gateway.users.models import User
from crm_kernel.db import Database

MakeSettings = Callable[..., GatewaySettings]


def code_at(secret: str, steps_from_now: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


async def login(api: Api, email: str, **extra: Any) -> Any:
    return await api.http.post(
        "/api/v1/auth/login", json={"email": email, "password": USER_PASSWORD, **extra}
    )


async def test_a_user_turns_2fa_on_and_logins_then_need_a_fresh_code(api: Api, db_url: str) -> None:
    headers = await api.user_headers("rita@example.com")
    setup = await api.http.post("/api/v1/me/2fa/setup", headers=headers)
    assert setup.status_code == 200
    secret = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/CRM:rita%40example.com?")
    wrong = await api.http.post("/api/v1/me/2fa/enable", json={"code": "000000"}, headers=headers)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "code"
    # Still off: a password alone logs in.
    assert (await login(api, "rita@example.com")).status_code == 200
    enabled = await api.http.post(
        "/api/v1/me/2fa/enable", json={"code": code_at(secret, -1)}, headers=headers
    )
    assert enabled.status_code == 204
    status = await api.http.get("/api/v1/me/2fa", headers=headers)
    assert status.json() == {"enabled": True, "required": False}
    # The secret is never shown again, and is not stored in the clear.
    again = await api.http.post("/api/v1/me/2fa/setup", headers=headers)
    assert again.status_code == 409
    db = Database(db_url)
    try:
        async with db.session() as session:
            stored = await session.scalar(select(User).where(User.email == "rita@example.com"))
    finally:
        await db.dispose()
    assert stored is not None and stored.totp_secret and secret not in stored.totp_secret

    asked = await login(api, "rita@example.com")
    assert asked.status_code == 401
    assert asked.json()["type"].endswith("/totp-required")
    bad = await login(api, "rita@example.com", totp="123456")
    assert bad.status_code == 401
    code = code_at(secret)
    ok = await login(api, "rita@example.com", totp=code)
    assert ok.status_code == 200, ok.text
    # The same code a second time (or the earlier one) is refused: codes are good once.
    replay = await login(api, "rita@example.com", totp=code)
    assert replay.status_code == 401
    # Disabling takes a code too.
    refused = await api.http.post(
        "/api/v1/me/2fa/disable", json={"code": "000000"}, headers=headers
    )
    assert refused.status_code == 422
    disabled = await api.http.post(
        "/api/v1/me/2fa/disable", json={"code": code_at(secret, 1)}, headers=headers
    )
    assert disabled.status_code == 204
    assert (await login(api, "rita@example.com")).status_code == 200

    audit = await api.http.get(
        "/api/v1/audit?record_type=user&action=user.2fa_enabled",
        headers=await api.admin_headers(),
    )
    assert len(audit.json()["items"]) == 1


async def test_a_role_can_be_required_to_use_2fa(make_settings: MakeSettings) -> None:
    async with running_gateway(make_settings(CRM_TOTP_REQUIRED_ROLES="head_of_sales")) as api:
        await api.create_user("head@example.com", "head_of_sales")
        first = await login(api, "head@example.com")
        assert first.status_code == 200
        headers = api.bearer(first.json()["access_token"])
        # Until 2FA is set up, the token reaches only /me/2fa and /auth.
        blocked = await api.http.get("/api/v1/contacts", headers=headers)
        assert blocked.status_code == 403
        assert blocked.json()["type"].endswith("/two-factor-setup-required")
        assert (await api.http.get("/api/v1/auth/me", headers=headers)).status_code == 200
        status = await api.http.get("/api/v1/me/2fa", headers=headers)
        assert status.json() == {"enabled": False, "required": True}
        secret = (await api.http.post("/api/v1/me/2fa/setup", headers=headers)).json()["secret"]
        enabled = await api.http.post(
            "/api/v1/me/2fa/enable", json={"code": code_at(secret)}, headers=headers
        )
        assert enabled.status_code == 204
        cannot_disable = await api.http.post(
            "/api/v1/me/2fa/disable", json={"code": code_at(secret, 1)}, headers=headers
        )
        assert cannot_disable.status_code == 409
        second = await login(api, "head@example.com", totp=code_at(secret, 1))
        assert second.status_code == 200
        full = api.bearer(second.json()["access_token"])
        # Past the gateway's check (the contacts service itself is not running here).
        assert (await api.http.get("/api/v1/contacts", headers=full)).status_code == 502
