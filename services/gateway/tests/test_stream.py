"""The live stream: each user sees only what they may; Last-Event-ID resumes without losses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import Api, SseReader, running_gateway, sse_connection
from crm_kernel.bus import Bus
from crm_kernel.events import Envelope
from crm_kernel.testing import wait_until

MakeSettings = Callable[..., GatewaySettings]


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A connection publishing as the services would (the gateway created the streams)."""
    connection = await Bus.connect(nats_url, name="test-producer")
    yield connection
    await connection.close()


async def publish(bus: Bus, event_type: str, **data: Any) -> None:
    await bus.publish(Envelope(type=event_type, source="/" + event_type.split(".")[1], data=data))


def deal(bus: Bus, title: str, owner_id: str) -> Any:
    return publish(bus, "crm.deals.deal.stage_changed", id=title, title=title, owner_id=owner_id)


def notice(bus: Bus, title: str, user_id: str) -> Any:
    return publish(bus, "crm.notifications.in_app.created", id=title, title=title, user_id=user_id)


def titles(reader: SseReader) -> list[str]:
    return [e["data"].get("title") or e["data"].get("id") for e in reader.events]


async def seen(reader: SseReader, title: str) -> None:
    await wait_until(lambda: title in titles(reader), message=f"{title} on the stream")


async def test_each_user_sees_only_what_they_may(api: Api, bus: Bus) -> None:
    rita = await api.create_user("rita@example.com")
    sam = await api.create_user("sam@example.com")
    await api.create_user("mia@example.com", "marketer")
    rita_token = (await api.login("rita@example.com"))["access_token"]
    sam_token = (await api.login("sam@example.com"))["access_token"]
    mia_token = (await api.login("mia@example.com"))["access_token"]

    async with (
        sse_connection(api.http, headers=api.bearer(rita_token)) as rita_sees,
        # Browsers' EventSource cannot send headers: the token may come in the query.
        sse_connection(api.http, params={"access_token": sam_token}) as sam_sees,
        sse_connection(api.http, headers=api.bearer(mia_token)) as mia_sees,
        sse_connection(api.http, headers=await api.admin_headers()) as admin_sees,
    ):
        await deal(bus, "rita's deal", rita["id"])
        await deal(bus, "sam's deal", sam["id"])
        await publish(
            bus,
            "crm.contacts.lead.received",
            id="lead for rita",
            owner_id=rita["id"],
            contact_id="c",
        )
        await notice(bus, "note for sam", sam["id"])
        await publish(bus, "crm.campaigns.campaign.progress", id="spring sale", sent=10)
        await publish(bus, "crm.contacts.contact.created", id="a contact", owner_id=rita["id"])
        await notice(bus, "rita done", rita["id"])
        await notice(bus, "sam done", sam["id"])
        await seen(rita_sees, "rita done")
        await seen(sam_sees, "sam done")
        await seen(mia_sees, "sam's deal")
        await seen(admin_sees, "sam done")

    assert titles(rita_sees) == ["rita's deal", "lead for rita", "rita done"]
    assert titles(sam_sees) == ["sam's deal", "note for sam", "sam done"]
    # Marketers: campaign progress and deals (they see every owner), no leads or notices.
    assert titles(mia_sees) == ["rita's deal", "sam's deal", "spring sale"]
    assert {
        "rita's deal",
        "sam's deal",
        "lead for rita",
        "note for sam",
        "spring sale",
        "a contact",
        "rita done",
        "sam done",
    } <= set(titles(admin_sees))
    assert rita_sees.events[0]["type"] == "crm.deals.deal.stage_changed"


async def test_a_reconnect_with_last_event_id_gets_what_was_missed(
    make_settings: MakeSettings, bus: Bus
) -> None:
    async with running_gateway(make_settings(CRM_STREAM_HEARTBEAT_SECONDS=0.2)) as api:
        rita = await api.create_user("rita@example.com")
        sam = await api.create_user("sam@example.com")
        headers = api.bearer((await api.login("rita@example.com"))["access_token"])
        async with sse_connection(api.http, headers=headers) as first:
            await deal(bus, "before", rita["id"])
            await seen(first, "before")
            # Heartbeats are comments that also carry the position.
            await wait_until(lambda: "heartbeat" in first.comments, message="a heartbeat")
        assert first.last_id is not None

        await deal(bus, "missed 1", rita["id"])
        await deal(bus, "not hers", sam["id"])
        await notice(bus, "missed 2", rita["id"])

        async with sse_connection(
            api.http, headers={**headers, "Last-Event-ID": first.last_id}
        ) as second:
            await seen(second, "missed 2")
            await deal(bus, "live again", rita["id"])
            await seen(second, "live again")
        async with sse_connection(api.http, headers=headers) as fresh:
            await deal(bus, "only new", rita["id"])
            await seen(fresh, "only new")

    assert titles(first) == ["before"]
    assert titles(second) == ["missed 1", "missed 2", "live again"]
    # Without Last-Event-ID a connection starts now: nothing old is replayed.
    assert titles(fresh) == ["only new"]


async def test_the_stream_needs_a_live_session(api: Api) -> None:
    await api.create_user("rita@example.com")
    pair = await api.login("rita@example.com")
    async with sse_connection(api.http) as anonymous:
        assert anonymous.status == 401
    async with sse_connection(api.http, params={"access_token": "not-a-token"}) as forged:
        assert forged.status == 401
    logout = await api.http.post("/api/v1/auth/logout", headers=api.bearer(pair["access_token"]))
    assert logout.status_code == 204
    async with sse_connection(api.http, params={"access_token": pair["access_token"]}) as ended:
        assert ended.status == 401


async def test_a_head_of_sales_sees_their_teams_deals_and_leads(api: Api, bus: Bus) -> None:
    team = await api.http.post(
        "/api/v1/teams", json={"name": "North"}, headers=await api.admin_headers()
    )
    north = team.json()["id"]
    rita = await api.create_user("rita@example.com", team_ids=[north])
    sam = await api.create_user("sam@example.com")
    head = await api.user_headers("head@example.com", "head_of_sales", team_ids=[north])
    head_id = (await api.http.get("/api/v1/auth/me", headers=head)).json()["id"]

    async with sse_connection(api.http, headers=head) as head_sees:
        await deal(bus, "rita's deal", rita["id"])
        await deal(bus, "sam's deal", sam["id"])
        await publish(
            bus,
            "crm.contacts.lead.received",
            id="lead for rita",
            owner_id=rita["id"],
            contact_id="c",
        )
        await publish(
            bus, "crm.contacts.lead.received", id="lead for sam", owner_id=sam["id"], contact_id="c"
        )
        await notice(bus, "note for rita", rita["id"])
        await notice(bus, "head done", head_id)
        await seen(head_sees, "head done")

    assert titles(head_sees) == ["rita's deal", "lead for rita", "head done"]


async def test_an_offboarded_users_stream_ends(make_settings: MakeSettings, bus: Bus) -> None:
    async with running_gateway(make_settings(CRM_STREAM_HEARTBEAT_SECONDS=0.2)) as api:
        rita = await api.create_user("rita@example.com")
        heir = await api.create_user("heir@example.com")
        headers = api.bearer((await api.login("rita@example.com"))["access_token"])
        async with sse_connection(api.http, headers=headers) as rita_sees:
            await deal(bus, "before", rita["id"])
            await seen(rita_sees, "before")
            offboarded = await api.http.post(
                f"/api/v1/users/{rita['id']}/offboard",
                json={"successor_id": heir["id"]},
                headers=await api.admin_headers(),
            )
            assert offboarded.status_code == 200
            # The server closes the stream at its next heartbeat.
            await wait_until(lambda: rita_sees.ended, message="the stream to end")
            await deal(bus, "after", rita["id"])
    assert titles(rita_sees) == ["before"]
