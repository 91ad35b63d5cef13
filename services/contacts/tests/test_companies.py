"""Companies: CRUD with If-Match, trash, events; contacts may point only at usable companies."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role


async def create_company(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    response = await api.post(
        "/companies", json={"name": "Ромашка и партнёры", **fields}, headers=headers or auth()
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_company_lifecycle_is_versioned_published_and_restorable(
    api: httpx.AsyncClient, events: Events
) -> None:
    company = await create_company(
        api, domain="https://www.Romashka.RU/about", phone="8 (495) 123-45-67", tags=["b2b"]
    )
    assert company["domain"] == "romashka.ru" and company["phone"] == "+74951234567"
    assert company["version"] == 1
    url = f"/companies/{company['id']}"
    fetched = await api.get(url, headers=auth())
    assert fetched.json() == company and fetched.headers["etag"] == '"1"'

    changed = await api.patch(url, json={"name": "Ромашка"}, headers={**auth(), "If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = await api.patch(url, json={"name": "X"}, headers={**auth(), "If-Match": '"1"'})
    assert stale.status_code == 412
    listed = (await api.get("/companies", params={"domain": "romashka.ru"}, headers=auth())).json()
    assert [c["name"] for c in listed["items"]] == ["Ромашка"]

    assert (await api.delete(url, headers=auth())).status_code == 204
    assert (await api.get(url, headers=auth())).status_code == 404
    trash = (await api.get("/companies", params={"trash": "true"}, headers=auth())).json()
    assert [c["id"] for c in trash["items"]] == [company["id"]]
    restore = await api.post(f"{url}/restore", headers=auth())
    assert restore.status_code == 200 and restore.json()["version"] == 4
    owner = str(uuid.uuid4())
    moved = await api.post(f"{url}/reassign", json={"owner_id": owner}, headers=auth())
    assert moved.status_code == 200 and moved.json()["owner_id"] == owner

    found = await wait_for_events(events, 5)
    assert [e.type for e in found] == [
        "crm.contacts.company.created",
        "crm.contacts.company.updated",
        "crm.contacts.company.deleted",
        "crm.contacts.company.restored",
        "crm.contacts.company.owner_changed",
    ]
    assert [e.data["version"] for e in found] == [1, 2, 3, 4, 5]
    assert found[-1].data["previous_owner_id"] == company["owner_id"]
    audit = (await api.get("/audit", params={"record_id": company["id"]}, headers=auth())).json()
    assert [e["action"] for e in audit["items"]] == [
        "reassign",
        "restore",
        "delete",
        "update",
        "create",
    ]


async def test_bad_company_input_is_422_naming_the_field(api: httpx.AsyncClient) -> None:
    for body, field in (
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "A", "domain": "not a domain"}, "domain"),
        ({"name": "A", "phone": "12"}, "phone"),
        ({"name": "A", "owner_id": "me"}, "owner_id"),
        ({"name": "A", "version": 3}, "version"),
    ):
        response = await api.post("/companies", json=body, headers=auth())
        assert response.status_code == 422, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.text)
    assert (await api.get("/companies", headers=auth())).json()["items"] == []


async def test_contact_company_must_be_a_live_company_the_caller_sees(
    api: httpx.AsyncClient,
) -> None:
    rep, colleague = str(uuid.uuid4()), str(uuid.uuid4())
    mine = await create_company(api, auth(Role.SALES_REP, rep), name="Mine")
    theirs = await create_company(api, auth(Role.SALES_REP, colleague), name="Theirs")
    gone = await create_company(api, auth(Role.SALES_REP, rep), name="Gone")
    assert (
        await api.delete(f"/companies/{gone['id']}", headers=auth(Role.SALES_REP, rep))
    ).status_code == 204

    for company_id in (theirs["id"], gone["id"], str(uuid.uuid4())):
        refused = await api.post(
            "/contacts",
            json={"first_name": "A", "company_id": company_id},
            headers=auth(Role.SALES_REP, rep),
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "company_id"
    created = await api.post(
        "/contacts",
        json={"first_name": "A", "company_id": mine["id"]},
        headers=auth(Role.SALES_REP, rep),
    )
    assert created.status_code == 201 and created.json()["company_id"] == mine["id"]
    repointed = await api.patch(
        f"/contacts/{created.json()['id']}",
        json={"company_id": theirs["id"]},
        headers=auth(Role.SALES_REP, rep),
    )
    assert repointed.status_code == 422 and repointed.json()["errors"][0]["field"] == "company_id"
    by_company = await api.get(
        "/contacts", params={"company_id": mine["id"]}, headers=auth(Role.SALES_REP, rep)
    )
    assert [c["id"] for c in by_company.json()["items"]] == [created.json()["id"]]
    # An admin sees every company, so may link any live one.
    linked = await api.patch(
        f"/contacts/{created.json()['id']}", json={"company_id": theirs["id"]}, headers=auth()
    )
    assert linked.status_code == 200 and linked.json()["company_id"] == theirs["id"]
