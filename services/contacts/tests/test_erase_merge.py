"""Erasure for privacy requests, duplicate suggestions and merging two contacts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.db import Database


async def create(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    response = await api.post(
        "/contacts", json={"first_name": "Anna", **fields}, headers=headers or auth()
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def log(api: httpx.AsyncClient, contact_id: str, summary: str) -> dict[str, Any]:
    body = {"contact_id": contact_id, "type": "call", "summary": summary}
    response = await api.post("/activities", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_erase_removes_personal_data_and_emits_once(
    api: httpx.AsyncClient, events: Events, db_url: str
) -> None:
    await api.post(
        "/custom-fields", json={"key": "hobby", "label": "Hobby", "type": "text"}, headers=auth()
    )
    contact = await create(
        api,
        last_name="Петрова",
        email="anna@example.com",
        phone="+7 912 345-67-89",
        custom={"hobby": "chess"},
        consent={"email": True},
    )
    cid = contact["id"]
    activity = await log(api, cid, "Talked about her divorce")
    rep = await api.post(
        f"/contacts/{cid}/erase", headers=auth(Role.SALES_REP, contact["owner_id"])
    )
    assert rep.status_code == 403

    assert (await api.post(f"/contacts/{cid}/erase", headers=auth())).status_code == 204
    assert (await api.post(f"/contacts/{cid}/erase", headers=auth())).status_code == 404
    assert (await api.get(f"/contacts/{cid}", headers=auth())).status_code == 404
    assert (await api.post(f"/contacts/{cid}/restore", headers=auth())).status_code == 404
    trash = await api.get("/contacts", params={"trash": "true"}, headers=auth())
    assert trash.json()["items"] == []
    for q in ("Петрова", "anna@example.com", "9123456789"):
        found = await api.get("/contacts", params={"q": q, "trash": "true"}, headers=auth())
        assert found.json()["items"] == [], q

    erased = await wait_for_events(events, 1, "crm.contacts.contact.erased")
    assert len(erased) == 1 and erased[0].subject == cid
    assert erased[0].data["email"] == "anna@example.com"
    assert erased[0].data["phone"] == "+79123456789"

    db = Database(db_url)
    try:
        async with db.session() as session:
            row = (
                await session.execute(
                    text("SELECT first_name, last_name, email, phone, custom FROM contacts")
                )
            ).one()
            assert row[:4] == ("", None, None, None) and row[4] in ({}, "{}")
            summary = await session.scalar(
                text("SELECT summary FROM activities WHERE id = :id"), {"id": activity["id"]}
            )
            assert summary == ""
            audit = (await session.execute(text("SELECT before, after FROM audit"))).all()
            assert "Петрова" not in str(audit) and "divorce" not in str(audit)
            assert "anna@example.com" not in str(audit)
    finally:
        await db.dispose()
    entries = await api.get("/audit", params={"action": "erase"}, headers=auth())
    assert [e["record_id"] for e in entries.json()["items"]] == [cid]


async def test_duplicates_suggest_likely_twins_only(api: httpx.AsyncClient) -> None:
    company = (await api.post("/companies", json={"name": "Ромашка"}, headers=auth())).json()
    anna = await create(
        api,
        first_name="Анна",
        last_name="Петрова",
        email="anna@example.com",
        company_id=company["id"],
    )
    same_mail = await api.post(
        "/contacts",
        params={"force": "true"},
        json={"first_name": "Ann", "email": "anna@example.com"},
        headers=auth(),
    )
    assert same_mail.status_code == 201
    namesake = await create(api, first_name="Анна", last_name="Петровой", company_id=company["id"])
    colleague = await create(api, first_name="Борис", last_name="Иванов", company_id=company["id"])
    stranger = await create(api, first_name="Анна", last_name="Петрова")  # no other signal

    found = await api.get(f"/contacts/{anna['id']}/duplicates", headers=auth())
    assert found.status_code == 200, found.text
    by_id = {d["contact"]["id"]: d for d in found.json()}
    assert by_id[same_mail.json()["id"]]["reasons"] == ["email"]
    assert set(by_id[namesake["id"]]["reasons"]) == {"company_id", "name"}
    assert set(by_id) == {same_mail.json()["id"], namesake["id"]}
    assert colleague["id"] not in by_id and stranger["id"] not in by_id
    missing = await api.get(f"/contacts/{uuid.uuid4()}/duplicates", headers=auth())
    assert missing.status_code == 404
    # A rep's suggestions hold only their own contacts, never a colleague's twin.
    rep = str(uuid.uuid4())
    own = await create(api, auth(Role.SALES_REP, rep), email="own@example.com")
    twin = await api.post(
        "/contacts",
        params={"force": "true"},
        json={"first_name": "Anna", "email": "own@example.com"},
        headers=auth(),
    )
    assert twin.status_code == 201
    seen = await api.get(f"/contacts/{own['id']}/duplicates", headers=auth(Role.SALES_REP, rep))
    assert seen.status_code == 200 and seen.json() == []
    as_admin = await api.get(f"/contacts/{own['id']}/duplicates", headers=auth())
    assert [d["contact"]["id"] for d in as_admin.json()] == [twin.json()["id"]]


async def test_merge_keeps_both_timelines_and_publishes_merged(
    api: httpx.AsyncClient, events: Events
) -> None:
    survivor = await create(
        api, last_name=None, email="anna@example.com", tags=["vip"], consent={"email": True}
    )
    other = await api.post(
        "/contacts",
        params={"force": "true"},
        json={
            "first_name": "Анна",
            "last_name": "Петрова",
            "email": "old@example.com",
            "phone": "+79123456789",
            "tags": ["b2b"],
        },
        headers=auth(),
    )
    other_id = other.json()["id"]
    sid = survivor["id"]
    mine = await log(api, sid, "survivor call")
    theirs = await log(api, other_id, "other call")
    # The other withdrew e-mail consent after the survivor gave it: the latest entry wins.
    await api.patch(
        f"/contacts/{other_id}", json={"consent": {"email": True, "source": "form"}}, headers=auth()
    )
    await api.patch(
        f"/contacts/{other_id}",
        json={"consent": {"email": False, "source": "phone_call"}},
        headers=auth(),
    )

    stale = await api.post(
        f"/contacts/{sid}/merge", json={"other_id": other_id}, headers={**auth(), "If-Match": "9"}
    )
    assert stale.status_code == 412
    itself = await api.post(f"/contacts/{sid}/merge", json={"other_id": sid}, headers=auth())
    assert itself.status_code == 422 and itself.json()["errors"][0]["field"] == "other_id"
    merged = await api.post(
        f"/contacts/{sid}/merge",
        json={"other_id": other_id},
        headers={**auth(), "If-Match": str(survivor["version"])},
    )
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["first_name"] == "Anna" and body["last_name"] == "Петрова"
    assert body["email"] == "anna@example.com" and body["phone"] == "+79123456789"
    assert body["tags"] == ["b2b", "vip"] and body["consent"]["email"] is False
    assert (await api.get(f"/contacts/{other_id}", headers=auth())).status_code == 404
    restore = await api.post(f"/contacts/{other_id}/restore", headers=auth())
    assert restore.status_code == 404

    timeline = await api.get(f"/contacts/{sid}/timeline", headers=auth())
    assert {e["id"] for e in timeline.json()["items"]} == {mine["id"], theirs["id"]}
    ledger = (await api.get(f"/contacts/{sid}/consent", headers=auth())).json()
    assert [(e["channel"], e["granted"], e["source"]) for e in ledger][-1] == (
        "email",
        False,
        "merge",
    )

    found = await wait_for_events(events, 1, "crm.contacts.contact.merged")
    assert len(found) == 1 and found[0].subject == sid
    assert found[0].data["merged_id"] == other_id and found[0].data["version"] == body["version"]
    audit = await api.get("/audit", params={"action": "merge"}, headers=auth())
    assert [e["record_id"] for e in audit.json()["items"]] == [sid]


async def test_merge_needs_the_right_to_see_and_change_both(api: httpx.AsyncClient) -> None:
    rep, colleague = str(uuid.uuid4()), str(uuid.uuid4())
    mine = await create(api, auth(Role.SALES_REP, rep), email="a@example.com")
    theirs = await create(api, auth(Role.SALES_REP, colleague), email="b@example.com")
    as_rep = auth(Role.SALES_REP, rep)
    response = await api.post(
        f"/contacts/{mine['id']}/merge", json={"other_id": theirs["id"]}, headers=as_rep
    )
    assert response.status_code == 404
    marketer = await create(api, auth(Role.MARKETER, str(uuid.uuid4())), email="c@example.com")
    response = await api.post(
        f"/contacts/{marketer['id']}/merge",
        json={"other_id": mine["id"]},
        headers=auth(Role.MARKETER, marketer["owner_id"]),
    )
    assert response.status_code == 403
    assert (await api.get(f"/contacts/{theirs['id']}", headers=auth())).status_code == 200
