"""In-app notices: stored per user, each sees only their own, read marks, live events."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import LeadReceived
from crm_kernel.contracts.notifications import SendInApp
from crm_kernel.testing import issue_token, serve_in_process, wait_until
from crm_notifications.main import create_app
from crm_notifications.testing import events_on, settings_for


def client(base_url: str, role: str, user_id: str) -> httpx.AsyncClient:
    token = issue_token(role, user_id=user_id)
    return httpx.AsyncClient(
        base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_notices_reach_their_users_only_and_are_marked_read(
    db_url: str,
    nats_url: str,
    tmp_dir: Path,
    bus: Bus,
    add_users: Callable[..., Awaitable[None]],
) -> None:
    rep, admin, other_admin, gone_admin = (str(uuid.uuid4()) for _ in range(4))
    app = create_app(settings_for(db_url, nats_url, tmp_dir))
    async with serve_in_process(app) as base_url:
        await add_users(
            (rep, "sales_rep", True),
            (admin, "admin", True),
            (other_admin, "admin", True),
            (gone_admin, "admin", False),
        )
        to_rep = SendInApp(key="deal:1:stage", user_id=rep, title="Deal moved", link="/deals/1")
        await bus.publish(to_rep.envelope())
        await bus.publish(to_rep.envelope())  # a producer retry: still one notice
        await bus.publish(
            SendInApp(
                key="alert:1", role="admin", title="Bulk read", category="security"
            ).envelope()
        )
        await bus.publish(
            LeadReceived(
                id=str(uuid.uuid4()),
                contact_id=str(uuid.uuid4()),
                is_new_contact=True,
                owner_id=rep,
                source="web_form",
                title="Roof repair",
                received_at="2026-11-29T10:00:00+00:00",
            ).envelope()
        )
        async with (
            client(base_url, "sales_rep", rep) as rep_api,
            client(base_url, "admin", admin) as admin_api,
            client(base_url, "admin", gone_admin) as gone_api,
        ):

            async def rep_notices() -> list[dict[str, object]]:
                items: list[dict[str, object]] = (await rep_api.get("/me/notifications")).json()[
                    "items"
                ]
                return items if len(items) == 2 else []

            mine = await wait_until(rep_notices, timeout=20, message="the rep's notices")
            assert {n["title"] for n in mine} == {"Deal moved", "New lead: Roof repair"}

            async def admin_notices() -> list[dict[str, object]]:
                items: list[dict[str, object]] = (await admin_api.get("/me/notifications")).json()[
                    "items"
                ]
                return items

            admins = await wait_until(admin_notices, timeout=20, message="the admin's notice")
            assert [n["title"] for n in admins] == ["Bulk read"]
            assert (await gone_api.get("/me/notifications")).json()["items"] == []

            # Pages by cursor, newest first.
            first = (await rep_api.get("/me/notifications", params={"limit": 1})).json()
            second = (
                await rep_api.get(
                    "/me/notifications", params={"limit": 1, "cursor": first["next_cursor"]}
                )
            ).json()
            assert [first["items"][0]["id"], second["items"][0]["id"]] == [n["id"] for n in mine]

            # Another user's notice does not exist for me.
            admin_notice = admins[0]["id"]
            assert (await rep_api.post(f"/me/notifications/{admin_notice}/read")).status_code == 404

            read = await rep_api.post(f"/me/notifications/{mine[0]['id']}/read")
            assert read.status_code == 200 and read.json()["read_at"] is not None
            unread = (await rep_api.get("/me/notifications", params={"unread": "true"})).json()
            assert [n["id"] for n in unread["items"]] == [mine[1]["id"]]
            assert (await rep_api.post("/me/notifications/read-all")).json() == {"marked_read": 1}
            unread = (await rep_api.get("/me/notifications", params={"unread": "true"})).json()
            assert unread["items"] == []
            # The admin's notice is still unread: read-all is per user.
            admins = (await admin_api.get("/me/notifications", params={"unread": "true"})).json()
            assert len(admins["items"]) == 1

        await wait_until(
            lambda: _events_at_least(bus, 4), timeout=10, message="in-app created events"
        )
        assert await events_on(bus, "crm.notifications.in_app.created") == 4


async def _events_at_least(bus: Bus, count: int) -> bool:
    return await events_on(bus, "crm.notifications.in_app.created") >= count
