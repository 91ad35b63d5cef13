"""Segments: static and dynamic members, visibility of members, bad filters, events."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role


async def contact(api: httpx.AsyncClient, owner: str, **fields: Any) -> str:
    body = {"first_name": "S", "owner_id": owner, **fields}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def member_ids(api: httpx.AsyncClient, segment_id: str, headers: dict[str, str]) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await api.get(f"/segments/{segment_id}/members", params=params, headers=headers)
        assert page.status_code == 200, page.text
        found |= {c["id"] for c in page.json()["items"]}
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


async def test_dynamic_segment_lists_matching_contacts_a_rep_sees_only_own(
    api: httpx.AsyncClient,
) -> None:
    rep, other = str(uuid.uuid4()), str(uuid.uuid4())
    mine_vip = await contact(api, rep, tags=["vip"], lifecycle_stage="commitment")
    await contact(api, rep, tags=["vip"], lifecycle_stage="awareness")
    theirs_vip = await contact(api, other, tags=["vip"], lifecycle_stage="expansion")
    await contact(api, other, tags=["cold"], lifecycle_stage="commitment")
    dynamic = {
        "all": [
            {"field": "tags", "op": "has", "value": "vip"},
            {"field": "lifecycle_stage", "op": "in", "value": ["commitment", "expansion"]},
        ]
    }
    created = await api.post(
        "/segments", json={"name": "Hot VIPs", "kind": "dynamic", "filter": dynamic}, headers=auth()
    )
    assert created.status_code == 201, created.text
    segment = created.json()
    assert await member_ids(api, segment["id"], auth()) == {mine_vip, theirs_vip}
    size = await api.get(f"/segments/{segment['id']}/size", headers=auth())
    assert size.json()["size"] == 2

    # A rep reading an admin's segment: not visible at all; their own copy: own members only.
    as_rep = auth(Role.SALES_REP, rep)
    assert (await api.get(f"/segments/{segment['id']}", headers=as_rep)).status_code == 404
    own = await api.post(
        "/segments", json={"name": "Mine", "kind": "dynamic", "filter": dynamic}, headers=as_rep
    )
    assert own.status_code == 201, own.text
    assert await member_ids(api, own.json()["id"], as_rep) == {mine_vip}
    assert (await api.get(f"/segments/{own.json()['id']}/size", headers=as_rep)).json()["size"] == 1


async def test_static_segment_members_by_id_and_filter_with_events(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep, other = str(uuid.uuid4()), str(uuid.uuid4())
    a = await contact(api, rep, email="a@example.com")
    b = await contact(api, rep, email="b@example.com", consent={"email": True})
    theirs = await contact(api, other, email="c@example.com", consent={"email": True})
    as_rep = auth(Role.SALES_REP, rep)
    segment = (
        await api.post("/segments", json={"name": "List", "kind": "static"}, headers=as_rep)
    ).json()
    url = f"/segments/{segment['id']}/members"

    denied = await api.post(url, json={"ids": [a, theirs]}, headers=as_rep)
    assert denied.status_code == 404, denied.text
    assert theirs in denied.json()["errors"][0]["message"]
    added = await api.post(url, json={"ids": [a]}, headers=as_rep)
    assert added.status_code == 200 and added.json()["added"] == 1
    by_filter = {"field": "consent.email", "op": "eq", "value": True}
    added = await api.post(url, json={"filter": by_filter}, headers=as_rep)
    assert added.json()["added"] == 1  # b only: the colleague's contact is not seen
    assert await member_ids(api, segment["id"], as_rep) == {a, b}
    removed = await api.post(f"{url}/remove", json={"ids": [a]}, headers=as_rep)
    assert removed.json()["removed"] == 1
    assert await member_ids(api, segment["id"], as_rep) == {b}

    # The admin adds the colleague's contact; the rep still sees only their own member.
    assert (await api.post(url, json={"ids": [theirs]}, headers=auth())).json()["added"] == 1
    assert await member_ids(api, segment["id"], as_rep) == {b}
    assert await member_ids(api, segment["id"], auth()) == {b, theirs}

    found = await wait_for_events(
        events, 5, "crm.contacts.segment.created", "crm.contacts.segment.members_changed"
    )
    assert found[0].type == "crm.contacts.segment.created"
    assert found[0].data["kind"] == "static" and found[0].data["owner_id"] == rep
    changes = [(e.data["added"], e.data["removed"]) for e in found[1:]]
    assert changes == [([a], []), ([b], []), ([], [a]), ([theirs], [])]


async def test_bad_filters_are_422_naming_the_path(api: httpx.AsyncClient) -> None:
    for bad, path in (
        ({"field": "password", "op": "eq", "value": "x"}, "filter.field"),
        ({"all": [{"field": "tags", "op": "eq", "value": "vip"}]}, "filter.all.0.op"),
        ({"field": "created_at", "op": "gt", "value": "yesterday"}, "filter.value"),
        ({"field": "custom.a'b", "op": "eq", "value": "x"}, "filter.field"),
    ):
        response = await api.post(
            "/segments", json={"name": "Bad", "kind": "dynamic", "filter": bad}, headers=auth()
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == path
    listed = await api.get("/segments", headers=auth())
    assert listed.json()["items"] == []


async def test_segment_update_delete_and_preview(api: httpx.AsyncClient, events: Events) -> None:
    owner = str(uuid.uuid4())
    anna = await contact(api, owner, first_name="Анна", custom={})
    await contact(api, owner, first_name="Boris")
    created = await api.post(
        "/segments",
        json={
            "name": "A",
            "kind": "dynamic",
            "filter": {"field": "first_name", "op": "eq", "value": "x"},
        },
        headers=auth(),
    )
    segment = created.json()
    starts = {"field": "first_name", "op": "starts_with", "value": "анн"}
    stale = await api.patch(
        f"/segments/{segment['id']}", json={"filter": starts}, headers={**auth(), "If-Match": "7"}
    )
    assert stale.status_code == 412
    updated = await api.patch(
        f"/segments/{segment['id']}", json={"filter": starts, "version": 1}, headers=auth()
    )
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert await member_ids(api, segment["id"], auth()) == {anna}
    preview = await api.post("/segments/preview", json={"filter": starts}, headers=auth())
    assert preview.json()["size"] == 1 and preview.json()["items"][0]["id"] == anna
    assert (await api.delete(f"/segments/{segment['id']}", headers=auth())).status_code == 204
    assert (await api.get(f"/segments/{segment['id']}", headers=auth())).status_code == 404
    found = await wait_for_events(
        events,
        3,
        "crm.contacts.segment.created",
        "crm.contacts.segment.updated",
        "crm.contacts.segment.deleted",
    )
    assert [e.type.rsplit(".", 1)[1] for e in found] == ["created", "updated", "deleted"]
    assert found[1].data["filter"] == starts and found[2].data["deleted_at"] is not None
