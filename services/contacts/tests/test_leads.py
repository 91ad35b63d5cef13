"""Lead intake: de-duplication, rule-based owners (also under concurrency), public forms, events."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx

from crm_contacts.testing import Events, auth, user_created, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.testing import wait_until

LEAD = "crm.contacts.lead.received"


async def team_in_directory(api: httpx.AsyncClient, bus: Bus, reps: int) -> tuple[str, list[str]]:
    """A team of `reps` active sales reps (and an inactive one), once the directory has them."""
    team, head = str(uuid.uuid4()), str(uuid.uuid4())
    members = sorted(str(uuid.uuid4()) for _ in range(reps))
    for rep in members:
        await bus.publish(user_created(rep, Role.SALES_REP, [team]).envelope())
    gone = user_created(str(uuid.uuid4()), Role.SALES_REP, [team]).model_copy(
        update={"is_active": False}
    )
    await bus.publish(gone.envelope())
    await bus.publish(user_created(head, Role.HEAD_OF_SALES, [team]).envelope())
    probes = []
    for rep in [*members, gone.id]:
        created = await api.post(
            "/contacts", json={"first_name": "P", "owner_id": rep}, headers=auth()
        )
        probes.append(created.json()["id"])

    async def head_sees_all() -> bool:
        for probe in probes:
            seen = await api.get(f"/contacts/{probe}", headers=auth(Role.HEAD_OF_SALES, head))
            if seen.status_code != 200:
                return False
        return True

    await wait_until(head_sees_all, timeout=30, message="the directory to know the team")
    for probe in probes:
        assert (await api.delete(f"/contacts/{probe}", headers=auth())).status_code == 204
    return team, members


async def rule(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Web", "fallback_owner_id": str(uuid.uuid4()), **fields}
    response = await api.post("/lead-rules", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_round_robin_spreads_concurrent_leads_evenly(
    api: httpx.AsyncClient, bus: Bus, events: Events
) -> None:
    team, reps = await team_in_directory(api, bus, 3)
    robin = await rule(api, kind="round_robin", team_id=team, default_tags=["web"])

    async def post(i: int) -> dict[str, Any]:
        body = {"email": f"lead{i}@example.com", "rule_id": robin["id"], "utm_source": "ads"}
        response = await api.post("/leads", json=body, headers=auth(Role.MARKETER))
        assert response.status_code == 201, response.text
        return dict(response.json())

    leads = await asyncio.gather(*(post(i) for i in range(9)))
    assert Counter(lead["owner_id"] for lead in leads) == {rep: 3 for rep in reps}
    assert all(lead["is_new_contact"] and lead["utm"] == {"utm_source": "ads"} for lead in leads)
    contact = (await api.get(f"/contacts/{leads[0]['contact_id']}", headers=auth())).json()
    assert contact["owner_id"] == leads[0]["owner_id"] and contact["tags"] == ["web"]
    assert contact["first_name"] == "lead0" and contact["email"] == "lead0@example.com"

    found = await wait_for_events(events, 9, LEAD)
    assert sorted(e.data["id"] for e in found) == sorted(lead["id"] for lead in leads)
    assert {e.data["rule_id"] for e in found} == {robin["id"]}
    stored = (await api.get(f"/lead-rules/{robin['id']}", headers=auth())).json()
    assert stored["leads_received"] == 9


async def test_least_open_leads_and_fallback(api: httpx.AsyncClient, bus: Bus) -> None:
    team, reps = await team_in_directory(api, bus, 2)
    least = await rule(api, kind="least_open_leads", team_id=team)
    owners = []
    for i in range(3):
        body = {"phone": f"+7912000000{i}", "rule_id": least["id"]}
        owners.append((await api.post("/leads", json=body, headers=auth())).json())
    assert [o["owner_id"] for o in owners] == [reps[0], reps[1], reps[0]]
    # Closing rep 0's leads makes them the one with fewest open leads again.
    for lead in (owners[0], owners[2]):
        closed = await api.patch(f"/leads/{lead['id']}", json={"status": "closed"}, headers=auth())
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
    body = {"phone": "+79120000009", "rule_id": least["id"]}
    assert (await api.post("/leads", json=body, headers=auth())).json()["owner_id"] == reps[0]

    empty_team = await rule(api, kind="round_robin", team_id=str(uuid.uuid4()))
    body = {"email": "nobody@example.com", "rule_id": empty_team["id"]}
    lead = (await api.post("/leads", json=body, headers=auth())).json()
    assert lead["owner_id"] == empty_team["fallback_owner_id"]

    vip_owner = str(uuid.uuid4())
    by_tag = await rule(api, kind="by_tag", routes=[{"tag": "north", "owner_id": vip_owner}])
    body = {"email": "n@example.com", "rule_id": by_tag["id"], "territory": "north"}
    assert (await api.post("/leads", json=body, headers=auth())).json()["owner_id"] == vip_owner
    body = {"email": "s@example.com", "rule_id": by_tag["id"], "territory": "south"}
    lead = (await api.post("/leads", json=body, headers=auth())).json()
    assert lead["owner_id"] == by_tag["fallback_owner_id"]


async def test_lead_for_existing_contact_becomes_a_note_and_one_event(
    api: httpx.AsyncClient, events: Events
) -> None:
    owner = str(uuid.uuid4())
    existing = await api.post(
        "/contacts",
        json={
            "first_name": "Анна",
            "email": "anna@example.com",
            "phone": "+79123456789",
            "owner_id": owner,
        },
        headers=auth(),
    )
    contact_id = existing.json()["id"]
    robin = await rule(api, kind="by_tag", routes=[{"tag": "x", "owner_id": str(uuid.uuid4())}])
    body = {
        "email": "ANNA@example.com",
        "message": "Call me back",
        "rule_id": robin["id"],
        "title": "Website order",
        "amount": "1500.50",
        "currency": "RUB",
    }
    response = await api.post("/leads", json=body, headers=auth(Role.HEAD_OF_SALES))
    assert response.status_code == 201, response.text
    lead = response.json()
    assert lead["contact_id"] == contact_id and not lead["is_new_contact"]
    assert lead["owner_id"] == owner  # the existing contact keeps its owner
    by_phone = await api.post("/leads", json={"phone": "8 (912) 345-67-89"}, headers=auth())
    assert by_phone.json()["contact_id"] == contact_id

    timeline = (await api.get(f"/contacts/{contact_id}/timeline", headers=auth())).json()
    notes = [e["summary"] for e in timeline["items"] if e["type"] == "note"]
    assert len(notes) == 2 and any("Call me back" in n and "Website order" in n for n in notes)
    contacts = await api.get("/contacts", params={"q": "anna@example.com"}, headers=auth())
    assert [c["id"] for c in contacts.json()["items"]] == [contact_id]

    found = await wait_for_events(events, 2, LEAD)
    await asyncio.sleep(0.5)
    found = await events(LEAD)
    assert len(found) == 2
    first = found[0].data
    assert first["contact_id"] == contact_id and first["is_new_contact"] is False
    assert first["amount"] == "1500.50" and first["currency"] == "RUB"
    assert first["source"] == "api" and first["title"] == "Website order"


async def test_who_may_post_leads_and_bad_input(api: httpx.AsyncClient) -> None:
    rep = auth(Role.SALES_REP)
    assert (
        await api.post("/leads", json={"email": "a@example.com"}, headers=rep)
    ).status_code == 403
    missing = await api.post("/leads", json={"first_name": "A"}, headers=auth())
    assert missing.status_code == 422 and missing.headers["content-type"].startswith(
        "application/problem+json"
    )
    bad_phone = await api.post("/leads", json={"phone": "12"}, headers=auth())
    assert bad_phone.status_code == 422 and bad_phone.json()["errors"][0]["field"] == "phone"
    unknown_rule = await api.post(
        "/leads", json={"email": "a@example.com", "rule_id": str(uuid.uuid4())}, headers=auth()
    )
    assert unknown_rule.status_code == 404
    assert (
        await api.post("/lead-rules", json={}, headers=auth(Role.HEAD_OF_SALES))
    ).status_code == 403
    await rule(
        api, kind="by_tag", routes=[{"tag": "a", "owner_id": str(uuid.uuid4())}], form_key="site"
    )
    taken = await api.post(
        "/lead-rules",
        json={
            "name": "Dup",
            "kind": "by_tag",
            "routes": [{"tag": "a", "owner_id": str(uuid.uuid4())}],
            "fallback_owner_id": str(uuid.uuid4()),
            "form_key": "site",
        },
        headers=auth(),
    )
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "form_key"


async def test_public_form_takes_a_lead_without_login(
    api: httpx.AsyncClient, events: Events
) -> None:
    fallback = str(uuid.uuid4())
    pipeline = str(uuid.uuid4())
    form = await rule(
        api,
        kind="by_tag",
        routes=[{"tag": "never", "owner_id": str(uuid.uuid4())}],
        fallback_owner_id=fallback,
        form_key="contact-us",
        pipeline_id=pipeline,
    )
    origin = urlsplit(str(api.base_url))
    async with httpx.AsyncClient(base_url=f"{origin.scheme}://{origin.netloc}") as public:
        body = {
            "first_name": "Иван",
            "email": "ivan@example.com",
            "company": "Фирма Ромашка",
            "message": "Нужна консультация",
            "utm_source": "yandex",
            "utm_campaign": "spring",
            "website": "",
        }
        accepted = await public.post("/public/forms/contact-us", json=body)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json() == {"received": True}
        assert (await public.post("/public/forms/nope-form", json=body)).status_code == 404
        invalid = await public.post("/public/forms/contact-us", json={"first_name": "X"})
        assert invalid.status_code == 422
        assert invalid.headers["content-type"].startswith("application/problem+json")
        bad_email = await public.post("/public/forms/contact-us", json={"email": "not-mail"})
        assert bad_email.status_code == 422 and bad_email.json()["errors"][0]["field"] == "email"

    [event] = await wait_for_events(events, 1, LEAD)
    assert event.data["source"] == "web_form" and event.data["form_key"] == "contact-us"
    assert event.data["owner_id"] == fallback and event.data["pipeline_id"] == pipeline
    assert event.data["rule_id"] == form["id"] and event.data["is_new_contact"] is True
    assert event.data["utm_source"] == "yandex" and event.data["utm_campaign"] == "spring"
    contact = (await api.get(f"/contacts/{event.data['contact_id']}", headers=auth())).json()
    assert contact["first_name"] == "Иван" and contact["owner_id"] == fallback
    leads = (await api.get("/leads", headers=auth(Role.SALES_REP, fallback))).json()["items"]
    assert [lead["company_name"] for lead in leads] == ["Фирма Ромашка"]
    assert (await api.get("/leads", headers=auth(Role.SALES_REP))).json()["items"] == []
