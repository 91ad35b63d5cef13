"""The contacts walking skeleton through its HTTP API, on a real database and NATS."""

from __future__ import annotations

import uuid

import httpx
import nats
import orjson
import pytest

from crm_contacts.testing import auth
from crm_kernel.auth import Role
from crm_kernel.testing import wait_until


async def test_created_contact_is_read_back_with_spec_fields(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/contacts",
        json={
            "first_name": "Анна",
            "last_name": "Петрова",
            "email": "Anna@Example.COM",
            "phone": "8 (912) 345-67-89",
            "tags": ["vip", "vip", "b2b"],
            "consent": {"email": True},
        },
        headers=auth(),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "anna@example.com"
    assert body["phone"] == "+79123456789"
    assert body["tags"] == ["b2b", "vip"]
    assert body["consent"] == {"email": True, "sms": False}
    assert body["version"] == 1
    fetched = await api.get(f"/contacts/{body['id']}", headers=auth())
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"first_name": "A", "email": "not-an-email"}, "email"),
        ({"first_name": "A", "phone": "12"}, "phone"),
        ({"first_name": ""}, "first_name"),
        ({"last_name": "only"}, "first_name"),
        ({"first_name": "A", "lifecycle_stage": "nirvana"}, "lifecycle_stage"),
        ({"first_name": "A", "unknown": 1}, "unknown"),
    ],
)
async def test_bad_input_is_422_problem_naming_the_field(
    api: httpx.AsyncClient, payload: dict[str, object], field: str
) -> None:
    response = await api.post("/contacts", json=payload, headers=auth())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]
    listed = await api.get("/contacts", headers=auth())
    assert listed.json()["items"] == []


async def test_no_token_is_401_and_unknown_id_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/contacts")).status_code == 401
    missing = await api.get(f"/contacts/{uuid.uuid4()}", headers=auth())
    assert missing.status_code == 404
    assert missing.json()["title"] == "Not found"


async def test_rep_cannot_read_colleagues_contact(api: httpx.AsyncClient) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    mine = (
        await api.post(
            "/contacts", json={"first_name": "Mine"}, headers=auth(Role.SALES_REP, alice)
        )
    ).json()
    assert mine["owner_id"] == alice
    assert (
        await api.get(f"/contacts/{mine['id']}", headers=auth(Role.SALES_REP, bob))
    ).status_code == 404
    bobs_list = await api.get("/contacts", headers=auth(Role.SALES_REP, bob))
    assert bobs_list.json()["items"] == []
    forced = await api.post(
        "/contacts", json={"first_name": "X", "owner_id": alice}, headers=auth(Role.SALES_REP, bob)
    )
    assert forced.status_code == 403


async def test_list_pages_through_every_contact_once(api: httpx.AsyncClient) -> None:
    ids = set()
    for i in range(7):
        ids.add(
            (await api.post("/contacts", json={"first_name": f"P{i}"}, headers=auth())).json()["id"]
        )
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/contacts", params=params, headers=auth())).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    bad = await api.get("/contacts", params={"cursor": "garbage"}, headers=auth())
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cursor"


async def test_contact_created_event_is_published_once(
    api: httpx.AsyncClient, nats_url: str
) -> None:
    created = (await api.post("/contacts", json={"first_name": "Evt"}, headers=auth())).json()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe("crm.contacts.contact.created", stream="CRM_CONTACTS")

        async def fetched() -> list[dict[str, object]]:
            try:
                return [orjson.loads(m.data) for m in await sub.fetch(10, timeout=0.5)]
            except nats.errors.TimeoutError:
                return []

        events = await wait_until(fetched, message="contact.created")
        assert len(events) == 1
        assert events[0]["subject"] == created["id"]
        assert events[0]["data"]["first_name"] == "Evt"
        assert events[0]["specversion"] == "1.0"
        info = await js.stream_info("CRM_CONTACTS")
        assert info.state.messages == 1
    finally:
        await nc.close()
