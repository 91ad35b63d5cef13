"""Lead intake checks contact custom fields like contact create: required ones, types, keys."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role

LEAD = "crm.contacts.lead.received"


async def define(api: httpx.AsyncClient, **fields: Any) -> None:
    response = await api.post("/custom-fields", json=fields, headers=auth())
    assert response.status_code == 201, response.text


def fields_named(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


async def test_lead_intake_enforces_required_custom_fields_like_contact_create(
    api: httpx.AsyncClient, events: Events
) -> None:
    await define(api, key="industry", label="Industry", type="text", required=True)
    await define(api, key="budget", label="Budget", type="number")
    as_marketer = auth(Role.MARKETER)
    lead = {"first_name": "Олег", "email": "oleg@example.com"}

    # The same answer for a contact and for a lead that would create one.
    contact = await api.post("/contacts", json={"first_name": "Олег"}, headers=auth())
    assert fields_named(contact) == ["custom.industry"]
    assert fields_named(await api.post("/leads", json=lead, headers=as_marketer)) == [
        "custom.industry"
    ]
    wrong = {**lead, "custom": {"industry": "retail", "budget": "a lot", "colour": "red"}}
    assert sorted(fields_named(await api.post("/leads", json=wrong, headers=as_marketer))) == [
        "custom.budget",
        "custom.colour",
    ]
    # Nothing half-written: no contact, no lead, no event.
    assert (await api.get("/contacts", headers=auth())).json()["items"] == []
    assert (await api.get("/leads", headers=auth())).json()["items"] == []

    good = {**lead, "custom": {"industry": "retail", "budget": 1500}}
    taken = await api.post("/leads", json=good, headers=as_marketer)
    assert taken.status_code == 201, taken.text
    created = (await api.get(f"/contacts/{taken.json()['contact_id']}", headers=auth())).json()
    assert created["custom"] == {"industry": "retail", "budget": 1500}

    # A lead for an existing person is held to the same rule (a 422 must not tell who exists);
    # its values go on the note, not over the contact's own.
    repeat = {"email": "oleg@example.com", "message": "again"}
    assert fields_named(await api.post("/leads", json=repeat, headers=as_marketer)) == [
        "custom.industry"
    ]
    second = await api.post(
        "/leads", json={**repeat, "custom": {"industry": "wholesale"}}, headers=as_marketer
    )
    assert second.status_code == 201, second.text
    assert second.json()["is_new_contact"] is False
    same = (await api.get(f"/contacts/{created['id']}", headers=auth())).json()
    assert same["custom"] == {"industry": "retail", "budget": 1500}
    timeline = await api.get(f"/contacts/{created['id']}/timeline", headers=auth())
    [note] = [e for e in timeline.json()["items"] if e["kind"] == "activity"]
    assert "industry: wholesale" in note["summary"] and "again" in note["summary"]

    found = await wait_for_events(events, 2, LEAD)
    assert [e.data["id"] for e in found] == [taken.json()["id"], second.json()["id"]]


async def test_web_form_leads_are_not_held_to_required_custom_fields(
    api: httpx.AsyncClient, events: Events
) -> None:
    await define(api, key="industry", label="Industry", type="text", required=True)
    form = await api.post(
        "/lead-rules",
        json={
            "name": "Site",
            "kind": "by_tag",
            "routes": [{"tag": "never", "owner_id": "00000000-0000-0000-0000-000000000001"}],
            "fallback_owner_id": "00000000-0000-0000-0000-000000000002",
            "form_key": "site-form",
        },
        headers=auth(),
    )
    assert form.status_code == 201, form.text
    origin = urlsplit(str(api.base_url))
    async with httpx.AsyncClient(base_url=f"{origin.scheme}://{origin.netloc}") as public:
        body = {"email": "visitor@example.com", "custom": {"industry": "ignored"}}
        accepted = await public.post("/public/forms/site-form", json=body)
    assert accepted.status_code == 202, accepted.text
    [event] = await wait_for_events(events, 1, LEAD)
    contact = (await api.get(f"/contacts/{event.data['contact_id']}", headers=auth())).json()
    assert contact["custom"] == {}
