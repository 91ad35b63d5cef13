"""Custom fields: admins define typed fields; contact and company values are checked against them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from crm_contacts.custom_fields.service import field_kinds
from crm_contacts.testing import auth
from crm_kernel.auth import Role
from crm_kernel.db import Database


async def define(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.post("/custom-fields", json=fields, headers=auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


def error_fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


async def test_only_admins_define_fields_and_keys_are_unique(api: httpx.AsyncClient) -> None:
    body = {"key": "budget", "label": "Budget", "type": "number"}
    rep = await api.post("/custom-fields", json=body, headers=auth(Role.SALES_REP))
    assert rep.status_code == 403
    field = await define(api, **body)
    assert field["entity"] == "contact" and field["required"] is False
    again = await api.post("/custom-fields", json=body, headers=auth())
    assert again.status_code == 409 and error_fields(again) == {"key"}
    bad_enum = await api.post(
        "/custom-fields", json={"key": "tier", "label": "Tier", "type": "enum"}, headers=auth()
    )
    assert bad_enum.status_code == 422
    listed = await api.get("/custom-fields", headers=auth(Role.SALES_REP))
    assert [f["key"] for f in listed.json()["items"]] == ["budget"]


async def test_contact_values_are_validated_against_definitions(
    api: httpx.AsyncClient, db_url: str
) -> None:
    await define(api, key="budget", label="Budget", type="number")
    await define(api, key="since", label="Client since", type="date")
    await define(api, key="tier", label="Tier", type="enum", options=["gold", "silver"])
    await define(api, key="vip", label="VIP", type="boolean")
    await define(api, key="note", label="Note", type="text")
    await define(api, key="region", label="Region", type="text", entity="company", required=True)

    unknown = await api.post(
        "/contacts", json={"first_name": "A", "custom": {"colour": "red"}}, headers=auth()
    )
    assert unknown.status_code == 422 and error_fields(unknown) == {"custom.colour"}
    wrong = await api.post(
        "/contacts",
        json={
            "first_name": "A",
            "custom": {"budget": "much", "since": "yesterday", "tier": "bronze", "vip": 1},
        },
        headers=auth(),
    )
    assert wrong.status_code == 422
    assert error_fields(wrong) == {"custom.budget", "custom.since", "custom.tier", "custom.vip"}
    assert (await api.get("/contacts", headers=auth())).json()["items"] == []

    good = {"budget": 1500.5, "since": "2024-02-01", "tier": "gold", "vip": True, "note": "hi"}
    created = await api.post("/contacts", json={"first_name": "A", "custom": good}, headers=auth())
    assert created.status_code == 201 and created.json()["custom"] == good
    url = f"/contacts/{created.json()['id']}"
    patched = await api.patch(url, json={"custom": {"budget": True}}, headers=auth())
    assert patched.status_code == 422 and error_fields(patched) == {"custom.budget"}
    patched = await api.patch(url, json={"custom": {"budget": 7}}, headers=auth())
    assert patched.status_code == 200 and patched.json()["custom"] == {"budget": 7}

    company = await api.post("/companies", json={"name": "Co"}, headers=auth())
    assert company.status_code == 422 and error_fields(company) == {"custom.region"}
    company = await api.post(
        "/companies", json={"name": "Co", "custom": {"region": "Урал"}}, headers=auth()
    )
    assert company.status_code == 201

    db = Database(db_url)
    try:
        async with db.session() as session:
            kinds = await field_kinds(session)
            assert kinds == {
                "budget": "number",
                "since": "date",
                "tier": "enum",
                "vip": "bool",
                "note": "text",
            }
            assert await field_kinds(session, "company") == {"region": "text"}
    finally:
        await db.dispose()


async def test_a_field_in_use_cannot_be_deleted(api: httpx.AsyncClient) -> None:
    field = await define(api, key="tier", label="Tier", type="enum", options=["a", "b"])
    url = f"/custom-fields/{field['id']}"
    contact = await api.post(
        "/contacts", json={"first_name": "A", "custom": {"tier": "a"}}, headers=auth()
    )
    assert (await api.delete(url, headers=auth())).status_code == 409
    changed = await api.patch(url, json={"options": ["a", "b", "c"]}, headers=auth())
    assert changed.status_code == 200 and changed.json()["version"] == 2
    cleared = await api.patch(
        f"/contacts/{contact.json()['id']}", json={"custom": {}}, headers=auth()
    )
    assert cleared.status_code == 200
    assert (await api.delete(url, headers=auth())).status_code == 204
    assert (await api.get(url, headers=auth())).status_code == 404


async def test_bad_input_on_the_new_endpoints_is_a_clear_problem(api: httpx.AsyncClient) -> None:
    contact = await api.post("/contacts", json={"first_name": "A"}, headers=auth())
    cid = contact.json()["id"]
    for method, url, body, status in (
        ("post", "/custom-fields", {"key": "Bad Key", "label": "x", "type": "text"}, 422),
        ("post", "/custom-fields", {"key": "k", "label": "x", "type": "colour"}, 422),
        (
            "post",
            "/custom-fields",
            {"key": "k", "label": "x", "type": "text", "options": ["a"]},
            422,
        ),
        (
            "post",
            "/custom-fields",
            {"key": "k", "label": "x", "type": "enum", "options": ["a", "a"]},
            422,
        ),
        (
            "post",
            "/custom-fields",
            {"key": "k", "label": "x", "type": "text", "entity": "deal"},
            422,
        ),
        ("post", "/contacts", {"first_name": "A", "custom": {"x": [1]}}, 422),
        ("post", "/contacts", {"first_name": "A", "custom": "x"}, 422),
        ("post", f"/contacts/{cid}/merge", {"other_id": "nope"}, 422),
        ("post", f"/contacts/{cid}/merge", {}, 422),
        ("post", f"/contacts/{cid}/merge", {"other_id": str(uuid.uuid4())}, 404),
        ("get", f"/contacts/{cid}/timeline?cursor=garbage", None, 400),
        ("get", "/custom-fields?entity=deal", None, 422),
    ):
        response = await api.request(method, url, json=body, headers=auth())
        assert response.status_code == status, (url, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert len((await api.get("/contacts", headers=auth())).json()["items"]) == 1
    assert (await api.get("/custom-fields", headers=auth())).json()["items"] == []
