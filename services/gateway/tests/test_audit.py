"""The merged audit: every service's entries and the gateway's own, newest first, for admins."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import ADMIN_EMAIL, Api, audit_stub_app, running_gateway
from crm_kernel.testing import serve_in_process

MakeSettings = Callable[..., GatewaySettings]


def contact_entries(actor_id: str, count: int) -> list[dict[str, Any]]:
    """A contacts-service audit spread around now, so it interleaves with the gateway's."""
    now = datetime.now(UTC)
    return [
        {
            "id": str(uuid.uuid4()),
            "at": (now + timedelta(seconds=5 * i - 30)).isoformat(),
            "actor_id": actor_id,
            "action": "update",
            "record_type": "contact",
            "record_id": str(uuid.uuid4()),
            "before": {"first_name": "A"},
            "after": {"first_name": f"A{i}"},
        }
        for i in range(count)
    ]


async def all_pages(api: Api, query: str, limit: int) -> tuple[list[dict], list[dict]]:
    items: list[dict] = []
    answers: list[dict] = []
    url = f"/api/v1/audit?limit={limit}&{query}"
    while True:
        response = await api.http.get(url, headers=await api.admin_headers())
        assert response.status_code == 200, response.text
        body = response.json()
        answers.append(body)
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        if body["next_cursor"] is None:
            return items, answers
        url = f"/api/v1/audit?limit={limit}&{query}&cursor={body['next_cursor']}"


async def test_admins_read_every_services_audit_merged(make_settings: MakeSettings) -> None:
    actor = str(uuid.uuid4())
    entries = contact_entries(actor, 7)
    async with (
        serve_in_process(audit_stub_app(entries)) as contacts_url,
        serve_in_process(audit_stub_app(None)) as deals_url,
        running_gateway(make_settings(CONTACTS_URL=contacts_url, DEALS_URL=deals_url)) as api,
    ):
        admin_id = (
            await api.http.get("/api/v1/auth/me", headers=await api.admin_headers())
        ).json()["id"]
        leaver = await api.create_user("leaver@example.com")
        heir = await api.create_user("heir@example.com")
        failed = await api.http.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong-password-1"}
        )
        assert failed.status_code == 401
        offboarded = await api.http.post(
            f"/api/v1/users/{leaver['id']}/offboard",
            json={"successor_id": heir["id"]},
            headers=await api.admin_headers(),
        )
        assert offboarded.status_code == 200

        items, answers = await all_pages(api, "", limit=3)
        only_offboarding = (
            await api.http.get(
                "/api/v1/audit?action=user.offboarded", headers=await api.admin_headers()
            )
        ).json()
        by_actor, _ = await all_pages(api, f"actor_id={actor}", limit=4)
        middle = entries[3]["at"]
        window, _ = await all_pages(
            api, f"actor_id={actor}&to={middle.replace('+00:00', 'Z')}", limit=2
        )
        rep = await api.user_headers("rep@example.com")
        refused = await api.http.get("/api/v1/audit", headers=rep)

    # Every entry once, newest first, across pages.
    assert len({(i["service"], i["id"]) for i in items}) == len(items)
    times = [datetime.fromisoformat(i["at"]) for i in items]
    assert times == sorted(times, reverse=True)
    assert {i["id"] for i in items if i["service"] == "contacts"} == {e["id"] for e in entries}
    actions = [i["action"] for i in items if i["service"] == "gateway"]
    assert "login.success" in actions and "login.failure" in actions
    assert "user.offboarded" in actions
    # Services without an audit, or unreachable, are marked, not an error.
    assert answers[0]["unavailable"]["deals"] == "no audit"
    assert answers[0]["unavailable"]["campaigns"].startswith("unreachable")

    assert [i["action"] for i in only_offboarding["items"]] == ["user.offboarded"]
    entry = only_offboarding["items"][0]
    assert entry["actor_id"] == admin_id and entry["record_id"] == leaver["id"]
    assert entry["detail"]["successor_id"] == heir["id"]

    assert {i["id"] for i in by_actor} == {e["id"] for e in entries}
    assert {i["id"] for i in window} == {e["id"] for e in entries[:4]}
    assert refused.status_code == 403


async def test_a_bad_audit_cursor_is_a_400(api: Api) -> None:
    response = await api.http.get(
        "/api/v1/audit?cursor=not-a-cursor", headers=await api.admin_headers()
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"
