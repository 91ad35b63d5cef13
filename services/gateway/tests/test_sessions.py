"""A user's own sessions (listed, revoked one by one) and the admins' login audit."""

from __future__ import annotations

from collections.abc import Callable

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, Api, running_gateway

MakeSettings = Callable[..., GatewaySettings]


async def login_from(api: Api, email: str, agent: str, password: str = USER_PASSWORD) -> dict:
    response = await api.http.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_a_user_lists_their_live_sessions_and_revokes_one_at_once(api: Api) -> None:
    await api.create_user("rep@example.com")
    laptop = await login_from(api, "rep@example.com", "Laptop/1.0")
    phone = await login_from(api, "rep@example.com", "Phone/2.0")
    await api.admin_headers()  # another user's session, not listed

    listed = await api.http.get("/api/v1/auth/sessions", headers=api.bearer(laptop["access_token"]))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(s["user_agent"], s["current"]) for s in items] == [
        ("Phone/2.0", False),
        ("Laptop/1.0", True),
    ]
    assert all(s["ip"] == "127.0.0.1" for s in items)
    phone_session = items[0]["id"]

    revoked = await api.http.delete(
        f"/api/v1/auth/sessions/{phone_session}", headers=api.bearer(laptop["access_token"])
    )
    assert revoked.status_code == 204
    phone_me = await api.http.get("/api/v1/auth/me", headers=api.bearer(phone["access_token"]))
    assert phone_me.status_code == 401
    phone_refresh = await api.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]}
    )
    assert phone_refresh.status_code == 401
    after = await api.http.get("/api/v1/auth/sessions", headers=api.bearer(laptop["access_token"]))
    assert [s["user_agent"] for s in after.json()["items"]] == ["Laptop/1.0"]


async def test_a_user_cannot_revoke_another_users_session(api: Api) -> None:
    await api.create_user("rep@example.com")
    rep = await api.login("rep@example.com")
    admin = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    admin_sessions = await api.http.get(
        "/api/v1/auth/sessions", headers=api.bearer(admin["access_token"])
    )
    admin_session = admin_sessions.json()["items"][0]["id"]
    response = await api.http.delete(
        f"/api/v1/auth/sessions/{admin_session}", headers=api.bearer(rep["access_token"])
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    me = await api.http.get("/api/v1/auth/me", headers=api.bearer(admin["access_token"]))
    assert me.status_code == 200


async def test_login_attempts_are_audited_with_address_and_agent_for_admins(
    make_settings: MakeSettings,
) -> None:
    async with running_gateway(make_settings(CRM_LOGIN_MAX_FAILURES_PER_ACCOUNT=2)) as api:
        user = await api.create_user("rep@example.com")
        await login_from(api, "rep@example.com", "Browser/1")
        for _ in range(2):
            failed = await api.http.post(
                "/api/v1/auth/login",
                json={"email": "rep@example.com", "password": "wrong-password"},
                headers={"User-Agent": "Guesser/9"},
            )
            assert failed.status_code == 401
        throttled = await api.http.post(
            "/api/v1/auth/login",
            json={"email": "REP@example.com", "password": USER_PASSWORD},
            headers={"User-Agent": "Browser/1"},
        )
        assert throttled.status_code == 429
        unknown = await api.http.post(
            "/api/v1/auth/login", json={"email": "ghost@example.com", "password": "whatever-123"}
        )
        assert unknown.status_code == 401

        admin = await api.admin_headers()
        rep_events = await api.http.get(
            "/api/v1/auth/logins", params={"email": "rep@example.com"}, headers=admin
        )
        failures = await api.http.get(
            "/api/v1/auth/logins", params={"outcome": "failure", "limit": 1}, headers=admin
        )
    assert rep_events.status_code == 200
    events = rep_events.json()["items"]
    assert [(e["outcome"], e["user_agent"]) for e in events] == [
        ("throttled", "Browser/1"),
        ("failure", "Guesser/9"),
        ("failure", "Guesser/9"),
        ("success", "Browser/1"),
    ]
    assert {e["ip"] for e in events} == {"127.0.0.1"}
    assert events[-1]["user_id"] == user["id"]
    page = failures.json()
    assert [e["email"] for e in page["items"]] == ["ghost@example.com"]
    assert page["items"][0]["user_id"] is None
    assert page["next_cursor"]


async def test_only_admins_read_the_login_audit(api: Api) -> None:
    rep = await api.user_headers("rep@example.com")
    response = await api.http.get("/api/v1/auth/logins", headers=rep)
    assert response.status_code == 403
