"""Erasing a person takes them out of every static segment, announced per segment."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.db import Database

MEMBERS_CHANGED = "crm.contacts.segment.members_changed"


async def contact(api: httpx.AsyncClient, owner: str) -> str:
    response = await api.post(
        "/contacts", json={"first_name": "S", "owner_id": owner}, headers=auth()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def static_segment(
    api: httpx.AsyncClient, headers: dict[str, str], name: str, *ids: str
) -> str:
    created = await api.post("/segments", json={"name": name, "kind": "static"}, headers=headers)
    assert created.status_code == 201, created.text
    segment_id = str(created.json()["id"])
    added = await api.post(
        f"/segments/{segment_id}/members", json={"ids": list(ids)}, headers=headers
    )
    assert added.status_code == 200, added.text
    return segment_id


async def memberships(db_url: str) -> set[tuple[str, str]]:
    db = Database(db_url)
    try:
        async with db.session() as session:
            rows = await session.execute(text("SELECT segment_id, contact_id FROM segment_members"))
            return {(str(s), str(c)) for s, c in rows}
    finally:
        await db.dispose()


async def test_erase_removes_static_memberships_and_announces_each_segment(
    api: httpx.AsyncClient, events: Events, db_url: str
) -> None:
    rep = str(uuid.uuid4())
    as_rep = auth(Role.SALES_REP, rep)
    erased, kept, loner = [await contact(api, rep) for _ in range(3)]
    both = await static_segment(api, as_rep, "Both", erased, kept)
    only = await static_segment(api, as_rep, "Only the erased", erased)
    # A segment the rep cannot see, and a deleted one: the person leaves those too.
    admins = await static_segment(api, auth(), "Admin's list", erased)
    gone = await static_segment(api, auth(), "Deleted list", erased)
    assert (await api.delete(f"/segments/{gone}", headers=auth())).status_code == 204
    before = len(await wait_for_events(events, 4, MEMBERS_CHANGED))  # the adds above

    admin = str(uuid.uuid4())
    as_admin = auth(Role.ADMIN, admin)
    assert (await api.post(f"/contacts/{erased}/erase", headers=as_admin)).status_code == 204

    assert await memberships(db_url) == {(both, kept)}
    members = await api.get(f"/segments/{both}/members", headers=as_rep)
    assert [c["id"] for c in members.json()["items"]] == [kept]
    assert (await api.get(f"/segments/{only}/size", headers=as_rep)).json()["size"] == 0
    found = await wait_for_events(events, before + 4, MEMBERS_CHANGED)
    assert len(found) == before + 4  # one event per segment
    changes = {
        e.data["segment_id"]: (e.data["added"], e.data["removed"], e.actor) for e in found[before:]
    }
    assert changes == {s: ([], [erased], admin) for s in (both, only, admins, gone)}
    entries = await api.get("/audit", params={"action": "erase"}, headers=auth())
    assert entries.json()["items"][0]["after"]["segment_memberships"] == 4

    # Erasing someone in no segment announces no membership change.
    assert (await api.post(f"/contacts/{loner}/erase", headers=auth())).status_code == 204
    await wait_for_events(events, 2, "crm.contacts.contact.erased")
    assert len(await events(MEMBERS_CHANGED)) == before + 4
    assert await memberships(db_url) == {(both, kept)}
