"""Activities and the timeline: CRUD with If-Match, private notes, paging, visibility via the contact."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role


async def contact(api: httpx.AsyncClient, owner: str | None = None) -> str:
    body: dict[str, Any] = {"first_name": "T", **({"owner_id": owner} if owner else {})}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def log(
    api: httpx.AsyncClient, contact_id: str, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"contact_id": contact_id, "type": "call", "summary": "Called", **fields}
    response = await api.post("/activities", json=body, headers=headers or auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_activity_changes_are_versioned_audited_and_published(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep = str(uuid.uuid4())
    contact_id = await contact(api, rep)
    deal_id = str(uuid.uuid4())
    activity = await log(
        api,
        contact_id,
        auth(Role.SALES_REP, rep),
        deal_id=deal_id,
        occurred_at="2026-03-01T10:00:00+03:00",
    )
    assert activity["author_id"] == rep and activity["deal_id"] == deal_id
    assert activity["occurred_at"].startswith("2026-03-01T07:00:00")
    url = f"/activities/{activity['id']}"
    fetched = await api.get(url, headers=auth(Role.SALES_REP, rep))
    assert fetched.json() == activity and fetched.headers["etag"] == '"1"'

    stale = await api.patch(url, json={"summary": "x"}, headers={**auth(), "If-Match": '"0"'})
    assert stale.status_code == 412
    changed = await api.patch(
        url, json={"type": "meeting", "summary": "Met"}, headers={**auth(), "If-Match": '"1"'}
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed.json()["type"] == "meeting"
    assert (await api.delete(url, headers=auth(Role.SALES_REP, rep))).status_code == 204
    assert (await api.get(url, headers=auth())).status_code == 404

    found = await wait_for_events(
        events, 3, *(f"crm.contacts.activity.{v}" for v in ("created", "updated", "deleted"))
    )
    assert [(e.type.rsplit(".", 1)[1], e.data["version"]) for e in found] == [
        ("created", 1),
        ("updated", 2),
        ("deleted", 3),
    ]
    assert found[1].data["activity_type"] == "meeting" and found[1].data["contact_id"] == contact_id
    assert found[2].data["deleted_at"] is not None
    audit = (await api.get("/audit", params={"record_type": "activity"}, headers=auth())).json()
    assert [e["action"] for e in audit["items"]] == ["delete", "update", "create"]


async def test_timeline_lists_a_contacts_activities_newest_first_in_pages(
    api: httpx.AsyncClient,
) -> None:
    mine, other = await contact(api), await contact(api)
    days = [5, 1, 4, 2, 3]
    made = {
        day: (await log(api, mine, summary=f"day {day}", occurred_at=f"2026-01-0{day}T12:00:00Z"))[
            "id"
        ]
        for day in days
    }
    await log(api, other, summary="elsewhere")
    assert (await api.delete(f"/activities/{made[3]}", headers=auth())).status_code == 204

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await api.get(f"/contacts/{mine}/timeline", params=params, headers=auth())
        assert page.status_code == 200, page.text
        seen += [entry["summary"] for entry in page.json()["items"]]
        assert all(entry["kind"] == "activity" for entry in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert seen == ["day 5", "day 4", "day 2", "day 1"]
    listed = await api.get("/activities", params={"contact_id": other}, headers=auth())
    assert [a["summary"] for a in listed.json()["items"]] == ["elsewhere"]
    calls = await api.get("/activities", params={"type": "meeting"}, headers=auth())
    assert calls.json()["items"] == []
    missing = await api.get(f"/contacts/{uuid.uuid4()}/timeline", headers=auth())
    assert missing.status_code == 404
    # A contact in the trash takes its timeline with it.
    assert (await api.delete(f"/contacts/{mine}", headers=auth())).status_code == 204
    assert (await api.get(f"/contacts/{mine}/timeline", headers=auth())).status_code == 404
    assert (await api.get(f"/activities/{made[5]}", headers=auth())).status_code == 404


async def test_private_notes_are_hidden_from_marketers(api: httpx.AsyncClient) -> None:
    rep = str(uuid.uuid4())
    contact_id = await contact(api, rep)
    note = await log(api, contact_id, auth(Role.SALES_REP, rep), type="note", private=True)
    public = await log(api, contact_id, auth(Role.SALES_REP, rep), type="note", summary="Public")
    marketer = auth(Role.MARKETER)
    assert (await api.get(f"/activities/{note['id']}", headers=marketer)).status_code == 404
    assert (await api.get(f"/activities/{public['id']}", headers=marketer)).status_code == 200
    timeline = (await api.get(f"/contacts/{contact_id}/timeline", headers=marketer)).json()
    assert [e["id"] for e in timeline["items"]] == [public["id"]]
    listed = (await api.get("/activities", headers=marketer)).json()
    assert [a["id"] for a in listed["items"]] == [public["id"]]
    for who in (auth(Role.SALES_REP, rep), auth(Role.ADMIN)):
        entries = (await api.get(f"/contacts/{contact_id}/timeline", headers=who)).json()
        assert {e["id"] for e in entries["items"]} == {note["id"], public["id"]}

    not_a_note = await api.post(
        "/activities",
        json={"contact_id": contact_id, "type": "call", "summary": "s", "private": True},
        headers=auth(),
    )
    assert not_a_note.status_code == 422 and not_a_note.json()["errors"][0]["field"] == "private"
    retyped = await api.patch(f"/activities/{note['id']}", json={"type": "call"}, headers=auth())
    assert retyped.status_code == 422 and retyped.json()["errors"][0]["field"] == "private"
    assert (await api.get(f"/activities/{note['id']}", headers=auth())).json()["version"] == 1


async def test_bad_activity_input_is_a_problem_naming_the_field(api: httpx.AsyncClient) -> None:
    rep = str(uuid.uuid4())
    contact_id = await contact(api, rep)
    others = await contact(api, str(uuid.uuid4()))
    for body, headers, field in (
        ({"type": "system"}, auth(), "type"),
        ({"type": "fax"}, auth(), "type"),
        ({"occurred_at": "2026-01-01T10:00:00"}, auth(), "occurred_at"),
        ({"occurred_at": "yesterday"}, auth(), "occurred_at"),
        ({"summary": "  "}, auth(), "summary"),
        ({"author_id": rep}, auth(), "author_id"),
        ({"contact_id": str(uuid.uuid4())}, auth(), "contact_id"),
        ({"contact_id": others}, auth(Role.SALES_REP, rep), "contact_id"),
        ({"contact_id": "x"}, auth(), "contact_id"),
    ):
        payload = {"contact_id": contact_id, "type": "call", "summary": "s", **body}
        response = await api.post("/activities", json=payload, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.text)
    assert (await api.get("/activities", headers=auth())).json()["items"] == []
