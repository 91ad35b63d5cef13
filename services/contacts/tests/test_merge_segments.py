"""A merge moves the merged contact's static segment memberships to the survivor, with events."""

from __future__ import annotations

import uuid

import httpx

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role

MEMBERS_CHANGED = "crm.contacts.segment.members_changed"


async def contact(api: httpx.AsyncClient, owner: str, email: str) -> str:
    body = {"first_name": "M", "owner_id": owner, "email": email}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def static_segment(
    api: httpx.AsyncClient, headers: dict[str, str], name: str, *ids: str
) -> str:
    created = await api.post("/segments", json={"name": name, "kind": "static"}, headers=headers)
    assert created.status_code == 201, created.text
    segment_id = str(created.json()["id"])
    if ids:
        added = await api.post(
            f"/segments/{segment_id}/members", json={"ids": list(ids)}, headers=headers
        )
        assert added.status_code == 200, added.text
    return segment_id


async def members(api: httpx.AsyncClient, segment_id: str, headers: dict[str, str]) -> list[str]:
    page = await api.get(f"/segments/{segment_id}/members", headers=headers)
    assert page.status_code == 200, page.text
    return [c["id"] for c in page.json()["items"]]


async def test_merge_moves_static_memberships_once_and_announces_them(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep = str(uuid.uuid4())
    as_rep = auth(Role.SALES_REP, rep)
    survivor = await contact(api, rep, "keep@example.com")
    loser = await contact(api, rep, "gone@example.com")
    both = await static_segment(api, as_rep, "Both", survivor, loser)
    loser_only = await static_segment(api, as_rep, "Loser only", loser)
    survivor_only = await static_segment(api, as_rep, "Survivor only", survivor)
    # A segment the merging rep cannot even see still follows the person.
    admins = await static_segment(api, auth(), "Admin's list", loser)
    before = len(await wait_for_events(events, 4, MEMBERS_CHANGED))  # the adds above

    merged = await api.post(f"/contacts/{survivor}/merge", json={"other_id": loser}, headers=as_rep)
    assert merged.status_code == 200, merged.text

    for segment_id in (both, loser_only, survivor_only):
        assert await members(api, segment_id, as_rep) == [survivor]
        size = await api.get(f"/segments/{segment_id}/size", headers=as_rep)
        assert size.json()["size"] == 1
    assert await members(api, admins, auth()) == [survivor]
    # The survivor is a stored member now, not a shadow of the merged one.
    removed = await api.post(
        f"/segments/{loser_only}/members/remove", json={"ids": [survivor]}, headers=as_rep
    )
    assert removed.json()["removed"] == 1
    assert await members(api, loser_only, as_rep) == []
    # Adding the survivor where it already is adds nothing (one membership each).
    again = await api.post(f"/segments/{both}/members", json={"ids": [survivor]}, headers=as_rep)
    assert again.json()["added"] == 0

    found = await wait_for_events(events, before + 4, MEMBERS_CHANGED)
    by_segment = {
        e.data["segment_id"]: (e.data["added"], e.data["removed"], e.actor)
        for e in found[before : before + 3]
    }
    assert by_segment == {
        both: ([], [loser], rep),
        loser_only: ([survivor], [loser], rep),
        admins: ([survivor], [loser], rep),
    }
    assert found[before + 3].data["removed"] == [survivor]
    merged_events = await events("crm.contacts.contact.merged")
    assert [e.data["merged_id"] for e in merged_events] == [loser]


async def test_merge_without_memberships_publishes_no_member_events(
    api: httpx.AsyncClient, events: Events
) -> None:
    survivor = await contact(api, str(uuid.uuid4()), "a@example.com")
    loser_owner = str(uuid.uuid4())
    loser = await contact(api, loser_owner, "b@example.com")
    untouched = await static_segment(api, auth(), "Other", survivor)
    merged = await api.post(f"/contacts/{survivor}/merge", json={"other_id": loser}, headers=auth())
    assert merged.status_code == 200, merged.text
    await wait_for_events(events, 1, MEMBERS_CHANGED)  # the add above
    await wait_for_events(events, 1, "crm.contacts.contact.merged")
    assert [e.data["added"] for e in await events(MEMBERS_CHANGED)] == [[survivor]]
    assert await members(api, untouched, auth()) == [survivor]
