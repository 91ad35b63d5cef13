"""Marketing events: signed registration, invitations, attendance, statistics, deals that followed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
from sqlalchemy import select

from crm_campaigns.events.links import registration_url
from crm_campaigns.events.models import ContactDeal
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.recipients.segments import audience_query
from crm_campaigns.testing import (
    User,
    contact_event,
    members,
    new_user,
    publish_all,
    settings_for,
    static_segment,
)
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.deals import DealCreated, DealWon, StageTransition
from crm_kernel.db import Database
from crm_kernel.testing import wait_until


def _root(api: httpx.AsyncClient) -> str:
    return str(api.base_url).removesuffix("/").removesuffix("/api/v1")


async def _contacts(bus: Bus, db: Database, count: int, **fields: Any) -> list[dict[str, Any]]:
    """Contacts published as the contacts service would, once the directory has them."""
    events = [contact_event(**fields) for _ in range(count)]
    await publish_all(bus, events)
    ids = [e.id for e in events]

    async def replicated() -> bool:
        async with db.session() as session:
            found = (await session.scalars(select(Recipient.id).where(Recipient.id.in_(ids)))).all()
        return len(found) == len(ids)

    await wait_until(replicated, timeout=30, message="contacts in the directory")
    return [e.model_dump() for e in events]


async def _event(api: httpx.AsyncClient, user: User, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Seminar on CRM",
        "kind": "seminar",
        "starts_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        "place": "Moscow, hall 2",
        **fields,
    }
    response = await api.post("/events", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _stream(nats_url: str, stream: str) -> list[dict[str, Any]]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            stored = await js.get_msg(stream, sequence)
            found.append(orjson.loads(stored.data or b"{}"))
        return found
    finally:
        await nc.close()


async def test_registration_through_the_signed_link(
    api: httpx.AsyncClient, bus: Bus, db: Database, db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    marketer = new_user(Role.MARKETER)
    event = await _event(api, marketer, capacity=2)
    first, second, third = await _contacts(bus, db, 3)
    settings = settings_for(db_url, nats_url, tmp_dir)
    link = registration_url(settings, event["id"], first["id"])
    assert link.startswith("http://127.0.0.1:8000/public/e/")
    token = link.rsplit("/", 1)[1]
    public = f"{_root(api)}/public/events"

    page = await api.get(f"{public}/{token}")
    assert page.status_code == 200, page.text
    assert page.json()["seats_left"] == 2
    assert page.json()["registered"] is False
    assert page.json()["name"] == "Seminar on CRM"

    payload, _, signature = token.partition(".")
    other_event = registration_url(settings, str(uuid.uuid4()), first["id"]).rsplit("/", 1)[1]
    for bad in (
        f"{payload}.{signature[:-2]}xx",
        f"{other_event.partition('.')[0]}.{signature}",
        "garbage",
    ):
        for response in (
            await api.get(f"{public}/{bad}"),
            await api.post(f"{public}/{bad}/register"),
        ):
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith("application/problem+json")

    for _ in range(2):  # registering again changes nothing
        registered = await api.post(f"{public}/{token}/register")
        assert registered.status_code == 200, registered.text
        assert registered.json() == {"registered": True}
    page = await api.get(f"{public}/{token}")
    assert page.json()["seats_left"] == 1
    assert page.json()["registered"] is True

    second_token = registration_url(settings, event["id"], second["id"]).rsplit("/", 1)[1]
    assert (await api.post(f"{public}/{second_token}/register")).status_code == 200
    third_token = registration_url(settings, event["id"], third["id"]).rsplit("/", 1)[1]
    full = await api.post(f"{public}/{third_token}/register")
    assert full.status_code == 409, full.text
    assert full.headers["content-type"].startswith("application/problem+json")
    # The first one may still come back to the page and re-register.
    assert (await api.post(f"{public}/{token}/register")).status_code == 200

    stats = (await api.get(f"/events/{event['id']}/stats", headers=marketer.headers)).json()
    assert stats["registered"] == 2
    assert stats["seats_left"] == 0
    assert stats["no_shows"] == 0  # the event has not started

    async def published() -> list[dict[str, Any]]:
        events = await _stream(nats_url, "CRM_CAMPAIGNS")
        found = [e for e in events if e["type"] == "crm.campaigns.participant.registered"]
        return found if len(found) >= 2 else []

    registrations = await wait_until(published, timeout=20, message="registrations published")
    assert sorted(r["data"]["contact_id"] for r in registrations) == sorted(
        [first["id"], second["id"]]
    )


async def test_invitations_bulk_attendance_import_and_coefficient(
    api: httpx.AsyncClient, bus: Bus, db: Database
) -> None:
    marketer = new_user(Role.MARKETER)
    rep = new_user(Role.SALES_REP)
    event = await _event(
        api, marketer, starts_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()
    )
    contacts = await _contacts(bus, db, 4)
    ids = [c["id"] for c in contacts]
    segment = static_segment()
    await publish_all(bus, [segment, *members(segment.id, ids)])

    async def in_segment() -> bool:
        async with db.session() as session:
            query = await audience_query(session, [segment.id], [])
            return len((await session.scalars(query)).all()) == 4

    await wait_until(in_segment, timeout=30, message="segment in the directory")
    url = f"/events/{event['id']}"

    denied = await api.post(
        f"{url}/invite", json={"segment_ids": [segment.id]}, headers=rep.headers
    )
    assert denied.status_code == 403
    invited = await api.post(
        f"{url}/invite", json={"segment_ids": [segment.id]}, headers=marketer.headers
    )
    assert invited.status_code == 200, invited.text
    assert invited.json() == {"invited": 4, "already_listed": 0, "not_sent": 0}
    again = await api.post(
        f"{url}/invite", json={"segment_ids": [segment.id]}, headers=marketer.headers
    )
    assert again.json() == {"invited": 0, "already_listed": 4, "not_sent": 0}

    stranger = str(uuid.uuid4())
    marked = await api.post(
        f"{url}/attendance",
        json={"contact_ids": [ids[0], ids[1], ids[2], stranger], "attended": True},
        headers=marketer.headers,
    )
    assert marked.status_code == 200, marked.text
    assert marked.json() == {"updated": 3, "unknown_contact_ids": [stranger]}
    undone = await api.post(
        f"{url}/attendance",
        json={"contact_ids": [ids[2]], "attended": False},
        headers=marketer.headers,
    )
    assert undone.json()["updated"] == 1

    stats = (await api.get(f"{url}/stats", headers=rep.headers)).json()
    assert (stats["invited"], stats["attended"]) == (4, 2)
    assert stats["participation_coefficient"] == "0.5"

    page = await api.get(f"{url}/participants?status=attended&limit=1", headers=marketer.headers)
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 1 and page.json()["next_cursor"]
    rest = await api.get(
        f"{url}/participants?status=attended&limit=1&cursor={page.json()['next_cursor']}",
        headers=marketer.headers,
    )
    listed = {page.json()["items"][0]["contact_id"], rest.json()["items"][0]["contact_id"]}
    assert listed == {ids[0], ids[1]}
    assert page.json()["items"][0]["email"].endswith("@example.com")
    # A sales rep's check-in list holds only their own clients.
    mine = await api.get(f"{url}/participants", headers=rep.headers)
    assert mine.status_code == 200 and mine.json()["items"] == []

    csv_body = (
        f"Name;E-Mail;Note\nAnn;{contacts[3]['email'].upper()};vip\nNobody;nobody@nowhere.example;\n"
    ).encode()
    imported = await api.post(
        f"{url}/attendance/import",
        files={"file": ("desk.csv", csv_body, "text/csv")},
        headers=marketer.headers,
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["attended"] == 1
    assert [e["row"] for e in imported.json()["errors"]] == [3]
    by_id = await api.post(
        f"{url}/attendance/import",
        files={"file": ("ids.csv", f"contact_id\n{ids[2]}\nnot-a-uuid\n".encode(), "text/csv")},
        headers=marketer.headers,
    )
    assert by_id.json()["attended"] == 1
    assert by_id.json()["errors"] == [{"row": 3, "message": "contact_id is not a UUID"}]
    bad = await api.post(
        f"{url}/attendance/import",
        files={"file": ("x.csv", b"name\nAnn\n", "text/csv")},
        headers=marketer.headers,
    )
    assert bad.status_code == 422

    stats = (await api.get(f"{url}/stats", headers=marketer.headers)).json()
    assert (stats["invited"], stats["attended"], stats["no_shows"]) == (4, 4, 0)
    assert stats["participation_coefficient"] == "1"
    event_read = (await api.get(url, headers=rep.headers)).json()
    assert (event_read["invited"], event_read["attended"]) == (4, 4)


async def test_coefficient_is_null_without_invitations_and_input_is_checked(
    api: httpx.AsyncClient,
) -> None:
    marketer = new_user(Role.MARKETER)
    event = await _event(api, marketer)
    stats = (await api.get(f"/events/{event['id']}/stats", headers=marketer.headers)).json()
    assert stats["participation_coefficient"] is None
    naive = await api.post(
        "/events",
        json={"name": "X", "kind": "webinar", "starts_at": "2030-01-01T10:00:00"},
        headers=marketer.headers,
    )
    assert naive.status_code == 422
    assert any("starts_at" in str(e) for e in naive.json()["errors"])
    wrong_kind = await api.post(
        "/events",
        json={"name": "X", "kind": "party", "starts_at": "2030-01-01T10:00:00Z"},
        headers=marketer.headers,
    )
    assert wrong_kind.status_code == 422
    nul = await api.post(
        "/events",
        json={"name": "A\u0000B", "kind": "other", "starts_at": "2030-01-01T10:00:00Z"},
        headers=marketer.headers,
    )
    assert nul.status_code == 422
    csv_nul = await api.post(
        f"/events/{event['id']}/attendance/import",
        files={"file": ("x.csv", b"email\n\x00@x\n", "text/csv")},
        headers=marketer.headers,
    )
    assert csv_nul.status_code == 422
    missing = await api.get(f"/events/{uuid.uuid4()}", headers=marketer.headers)
    assert missing.status_code == 404
    stale = await api.patch(
        f"/events/{event['id']}",
        json={"capacity": 10},
        headers={**marketer.headers, "If-Match": '"99"'},
    )
    assert stale.status_code == 412
    changed = await api.patch(
        f"/events/{event['id']}",
        json={"capacity": 10, "place": "Online"},
        headers={**marketer.headers, "If-Match": f'"{event["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["capacity"], changed.json()["place"]) == (10, "Online")


def _deal(
    kind: type[Any],
    contact_id: str,
    *,
    created: datetime,
    amount: str,
    currency: str,
    won: datetime | None = None,
    deal_id: str | None = None,
) -> Any:
    stage = str(uuid.uuid4())
    moment = (won or created).isoformat()
    fields: dict[str, Any] = {
        "id": deal_id or str(uuid.uuid4()),
        "title": "Deal",
        "contact_id": contact_id,
        "pipeline_id": str(uuid.uuid4()),
        "stage_id": stage,
        "owner_id": str(uuid.uuid4()),
        "amount": amount,
        "currency": currency,
        "status": "won" if won else "open",
        "stage_entered_at": moment,
        "closed_at": won.isoformat() if won else None,
        "version": 2 if won else 1,
        "created_at": created.isoformat(),
        "updated_at": moment,
        "transition": StageTransition(
            history_id=str(uuid.uuid4()),
            pipeline_id=str(uuid.uuid4()),
            to_stage_id=stage,
            to_position=1,
            to_probability="10",
            to_kind="won" if won else "open",
            entered_at=moment,
            direction="created" if kind is DealCreated else "forward",
            reason="win" if won else "create",
        ),
    }
    return kind(**fields)


async def test_deals_that_followed_come_from_deal_events(
    api: httpx.AsyncClient, bus: Bus, db: Database
) -> None:
    marketer = new_user(Role.MARKETER)
    now = datetime.now(UTC)
    event = await _event(
        api, marketer, starts_at=(now - timedelta(days=10)).isoformat(), attribution_days=30
    )
    came, also_came, stayed_away = await _contacts(bus, db, 3)
    marked = await api.post(
        f"/events/{event['id']}/attendance",
        json={"contact_ids": [came["id"], also_came["id"]], "attended": True},
        headers=marketer.headers,
    )
    assert marked.json()["updated"] == 2  # walk-ins join the list
    followed = str(uuid.uuid4())
    earlier = str(uuid.uuid4())
    await publish_all(
        bus,
        [
            # Created after the event and won: counts as created and won.
            _deal(
                DealWon,
                came["id"],
                created=now - timedelta(days=2),
                amount="1500.50",
                currency="RUB",
                won=now,
                deal_id=followed,
            ),
            _deal(
                DealCreated,
                came["id"],
                created=now - timedelta(days=2),
                amount="1500.50",
                currency="RUB",
                deal_id=followed,
            ),
            # Created before the event, won after it: a win that followed.
            _deal(
                DealWon,
                also_came["id"],
                created=now - timedelta(days=20),
                amount="200.00",
                currency="USD",
                won=now - timedelta(days=1),
                deal_id=earlier,
            ),
            # Won before the event: not a result of it.
            _deal(
                DealWon,
                also_came["id"],
                created=now - timedelta(days=40),
                amount="999",
                currency="USD",
                won=now - timedelta(days=15),
            ),
            # Someone who did not come.
            _deal(DealWon, stayed_away["id"], created=now, amount="5", currency="RUB", won=now),
        ],
    )

    async def all_applied() -> bool:
        async with db.session() as session:
            return len((await session.scalars(select(ContactDeal.deal_id))).all()) == 4

    await wait_until(all_applied, timeout=30, message="deal events applied")
    response = await api.get(f"/events/{event['id']}/stats", headers=marketer.headers)
    assert response.json()["deals"] == {
        "days": 30,
        "created": 1,
        "won": 2,
        "revenue": {"RUB": "1500.5", "USD": "200"},
    }


async def test_the_last_seat_goes_to_one_of_two_concurrent_registrations(
    api: httpx.AsyncClient, bus: Bus, db: Database, db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    marketer = new_user(Role.MARKETER)
    event = await _event(api, marketer, capacity=1)
    contacts = await _contacts(bus, db, 4)
    settings = settings_for(db_url, nats_url, tmp_dir)
    tokens = [registration_url(settings, event["id"], c["id"]).rsplit("/", 1)[1] for c in contacts]
    public = f"{_root(api)}/public/events"
    answers = await asyncio.gather(*(api.post(f"{public}/{t}/register") for t in tokens))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    stats = (await api.get(f"/events/{event['id']}/stats", headers=marketer.headers)).json()
    assert (stats["registered"], stats["seats_left"]) == (1, 0)


async def test_invitations_sent_by_the_event_carry_working_links(
    api: httpx.AsyncClient, bus: Bus, db: Database, nats_url: str
) -> None:
    marketer = new_user(Role.MARKETER)
    event = await _event(api, marketer, name="Open day")
    willing, unwilling = (
        await _contacts(bus, db, 1),
        await _contacts(bus, db, 1, consent_email=False),
    )
    segment = static_segment()
    ids = [willing[0]["id"], unwilling[0]["id"]]
    await publish_all(bus, [segment, *members(segment.id, ids)])

    async def in_segment() -> bool:
        async with db.session() as session:
            query = await audience_query(session, [segment.id], [])
            return len((await session.scalars(query)).all()) == 2

    await wait_until(in_segment, timeout=30, message="segment in the directory")
    template = await api.post(
        "/templates",
        json={
            "name": "Invitation",
            "channel": "email",
            "subject": "{{ event.name }}: you are invited",
            "body_html": '<p><a href="{{ event.registration_url }}">Register</a></p>',
            "body_text": "Register: {{ event.registration_url }}",
        },
        headers=marketer.headers,
    )
    assert template.status_code == 201, template.text
    body = {"segment_ids": [segment.id], "template_id": template.json()["id"]}
    url = f"/events/{event['id']}/invite"
    sent = await api.post(url, json=body, headers=marketer.headers)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"invited": 1, "already_listed": 0, "not_sent": 1}
    again = await api.post(url, json=body, headers=marketer.headers)
    assert again.json() == {"invited": 0, "already_listed": 1, "not_sent": 1}

    async def invitations() -> list[dict[str, Any]]:
        return [m["data"] for m in await _stream(nats_url, "CRM_NOTIFICATIONS_BULK_COMMANDS")]

    await wait_until(invitations, timeout=20, message="the invitation command")
    await asyncio.sleep(0.5)  # time for a second command, if one were queued
    commands = await invitations()
    assert [c["key"] for c in commands] == [f"event:{event['id']}:{willing[0]['id']}"]
    assert commands[0]["subject"] == "Open day: you are invited"
    link = commands[0]["body_text"].removeprefix("Register: ")
    assert link.startswith("http://127.0.0.1:8000/public/e/")
    token = link.rsplit("/", 1)[1]
    registered = await api.post(f"{_root(api)}/public/events/{token}/register")
    assert registered.status_code == 200, registered.text
    # The invitation's one-click unsubscribe works like a campaign's.
    unsubscribe = commands[0]["unsubscribe_url"].rsplit("/", 1)[1]
    assert (await api.post(f"{_root(api)}/public/unsubscribe/{unsubscribe}")).status_code == 200
    stats = (await api.get(f"/events/{event['id']}/stats", headers=marketer.headers)).json()
    assert (stats["invited"], stats["registered"]) == (1, 1)
