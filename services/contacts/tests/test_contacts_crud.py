"""Contacts beyond creation: If-Match edits, trash and restore, duplicates, owners, consent, audit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from crm_contacts.testing import Events, auth, user_created, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.testing import wait_until


async def create(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    response = await api.post(
        "/contacts", json={"first_name": "Anna", **fields}, headers=headers or auth()
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_patch_needs_the_current_version_and_bumps_it(api: httpx.AsyncClient) -> None:
    contact = await create(api, last_name="Old", position="CEO")
    url = f"/contacts/{contact['id']}"
    changed = await api.patch(
        url, json={"last_name": "New", "position": None}, headers={**auth(), "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["last_name"] == "New" and changed.json()["position"] is None
    assert changed.json()["version"] == 2 and changed.headers["etag"] == '"2"'
    assert changed.json()["first_name"] == "Anna"  # fields not sent are kept

    stale = await api.patch(url, json={"last_name": "Lost"}, headers={**auth(), "If-Match": "1"})
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert stale.json()["current_version"] == 2
    stale_body = await api.patch(url, json={"last_name": "Lost", "version": 1}, headers=auth())
    assert stale_body.status_code == 412

    unconditional = await api.patch(url, json={"tags": ["b", "a", "b"]}, headers=auth())
    assert unconditional.status_code == 200
    assert unconditional.json()["version"] == 3 and unconditional.json()["tags"] == ["a", "b"]
    fetched = (await api.get(url, headers=auth())).json()
    assert fetched["last_name"] == "New" and fetched["version"] == 3


async def test_bad_patch_is_a_problem_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    contact = await create(api)
    url = f"/contacts/{contact['id']}"
    for body, headers, status, field in (
        ({"first_name": None}, {}, 422, "first_name"),
        ({"owner_id": str(uuid.uuid4())}, {}, 422, "owner_id"),
        ({"email": "nope"}, {}, 422, "email"),
        ({"phone": "12"}, {}, 422, "phone"),
        ({"tags": "vip"}, {}, 422, "tags"),
        ({"consent": {"email": "maybe"}}, {}, 422, "consent.email"),
        ({"company_id": str(uuid.uuid4())}, {}, 422, "company_id"),
        ({"last_name": "X"}, {"If-Match": "yesterday"}, 400, "If-Match"),
    ):
        response = await api.patch(url, json=body, headers={**auth(), **headers})
        assert response.status_code == status, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.text)
    assert (await api.get(url, headers=auth())).json() == contact


async def test_concurrent_edits_of_one_version_let_exactly_one_win(api: httpx.AsyncClient) -> None:
    contact = await create(api)
    url = f"/contacts/{contact['id']}"
    responses = await asyncio.gather(
        *(
            api.patch(url, json={"last_name": f"L{i}"}, headers={**auth(), "If-Match": '"1"'})
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    assert (await api.get(url, headers=auth())).json()["version"] == 2


async def test_deleted_contact_goes_to_the_trash_and_can_be_restored(
    api: httpx.AsyncClient,
) -> None:
    rep = str(uuid.uuid4())
    contact = await create(api, auth(Role.SALES_REP, rep))
    url = f"/contacts/{contact['id']}"
    stale = await api.delete(url, headers={**auth(Role.SALES_REP, rep), "If-Match": '"7"'})
    assert stale.status_code == 412
    assert (await api.delete(url, headers=auth(Role.SALES_REP, rep))).status_code == 204
    assert (await api.get(url, headers=auth(Role.SALES_REP, rep))).status_code == 404
    assert (await api.get(url, headers=auth())).status_code == 404
    assert (await api.get("/contacts", headers=auth())).json()["items"] == []
    assert (await api.delete(url, headers=auth())).status_code == 404

    rep_trash = await api.get("/contacts", params={"trash": "true"}, headers=auth(Role.SALES_REP))
    assert rep_trash.status_code == 403
    trash = (await api.get("/contacts", params={"trash": "true"}, headers=auth())).json()
    assert [c["id"] for c in trash["items"]] == [contact["id"]]
    assert trash["items"][0]["deleted_at"] is not None

    assert (await api.post(f"{url}/restore", headers=auth(Role.SALES_REP, rep))).status_code == 403
    restored = await api.post(f"{url}/restore", headers=auth())
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None and restored.json()["version"] == 3
    assert (await api.get(url, headers=auth(Role.SALES_REP, rep))).status_code == 200
    assert (await api.post(f"{url}/restore", headers=auth())).status_code == 404
    after = (await api.get("/contacts", params={"trash": "true"}, headers=auth())).json()
    assert after["items"] == []


async def test_duplicate_email_or_phone_is_409_naming_the_existing_contact(
    api: httpx.AsyncClient,
) -> None:
    first = await create(api, email="anna@example.com", phone="+7 912 345-67-89")
    for fields, field in (
        ({"email": "ANNA@example.com"}, "email"),
        ({"phone": "8 (912) 345-67-89"}, "phone"),
    ):
        response = await api.post(
            "/contacts", json={"first_name": "Twin", **fields}, headers=auth()
        )
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["existing_id"] == first["id"]
        assert problem["errors"][0]["field"] == field
        assert problem["errors"][0]["existing_id"] == first["id"]
    # A colleague's contact is a duplicate too; only its id is revealed.
    by_rep = await api.post(
        "/contacts",
        json={"first_name": "T", "email": "anna@example.com"},
        headers=auth(Role.SALES_REP),
    )
    assert by_rep.status_code == 409 and by_rep.json()["existing_id"] == first["id"]
    listed = (await api.get("/contacts", headers=auth())).json()["items"]
    assert [c["id"] for c in listed] == [first["id"]]

    forced = await api.post(
        "/contacts",
        params={"force": "true"},
        json={"first_name": "Twin", "email": "anna@example.com"},
        headers=auth(),
    )
    assert forced.status_code == 201

    other = await create(api, email="other@example.com")
    clash = await api.patch(
        f"/contacts/{other['id']}", json={"phone": "+79123456789"}, headers=auth()
    )
    assert clash.status_code == 409 and clash.json()["existing_id"] == first["id"]
    # A contact in the trash is no longer a twin of anyone.
    assert (await api.delete(f"/contacts/{other['id']}", headers=auth())).status_code == 204
    assert (await create(api, email="other@example.com"))["email"] == "other@example.com"


async def test_every_change_is_published_with_the_full_state_and_version(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep, other = str(uuid.uuid4()), str(uuid.uuid4())
    contact = await create(api, owner_id=rep, email="ev@example.com")
    url = f"/contacts/{contact['id']}"
    assert (await api.patch(url, json={"position": "CTO"}, headers=auth())).status_code == 200
    reassigned = await api.post(f"{url}/reassign", json={"owner_id": other}, headers=auth())
    assert reassigned.status_code == 200 and reassigned.json()["owner_id"] == other
    assert (await api.delete(url, headers=auth())).status_code == 204
    assert (await api.post(f"{url}/restore", headers=auth())).status_code == 200

    found = await wait_for_events(events, 5)
    assert [e.type.rsplit(".", 1)[1] for e in found] == [
        "created",
        "updated",
        "owner_changed",
        "deleted",
        "restored",
    ]
    assert [e.data["version"] for e in found] == [1, 2, 3, 4, 5]
    assert all(e.subject == contact["id"] and e.data["email"] == "ev@example.com" for e in found)
    assert found[1].data["position"] == "CTO"
    assert found[2].data["owner_id"] == other and found[2].data["previous_owner_id"] == rep
    assert found[3].data["deleted_at"] is not None and found[4].data["deleted_at"] is None


async def test_reassigning_one_or_many_is_audited_and_all_or_nothing(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep, successor = str(uuid.uuid4()), str(uuid.uuid4())
    ids = [(await create(api, owner_id=rep, first_name=f"C{i}"))["id"] for i in range(3)]
    for role in (Role.SALES_REP, Role.MARKETER):
        refused = await api.post(
            "/contacts/reassign", json={"ids": ids, "owner_id": successor}, headers=auth(role, rep)
        )
        assert refused.status_code == 403

    missing = str(uuid.uuid4())
    partial = await api.post(
        "/contacts/reassign", json={"ids": [*ids, missing], "owner_id": successor}, headers=auth()
    )
    assert partial.status_code == 404 and missing in partial.json()["detail"]
    assert partial.json()["errors"][0]["field"] == "ids"
    owners = {(await api.get(f"/contacts/{i}", headers=auth())).json()["owner_id"] for i in ids}
    assert owners == {rep}

    bulk = await api.post(
        "/contacts/reassign", json={"ids": ids, "owner_id": successor}, headers=auth()
    )
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["count"] == 3
    listed = (await api.get("/contacts", params={"owner_id": successor}, headers=auth())).json()
    assert sorted(c["id"] for c in listed["items"]) == sorted(ids)
    bad = await api.post("/contacts/reassign", json={"ids": [], "owner_id": rep}, headers=auth())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "ids"

    audit = (await api.get("/audit", params={"action": "reassign"}, headers=auth())).json()
    assert sorted(e["record_id"] for e in audit["items"]) == sorted(ids)
    assert {e["before"]["owner_id"] for e in audit["items"]} == {rep}
    assert {e["after"]["owner_id"] for e in audit["items"]} == {successor}
    changed = await wait_for_events(events, 3, "crm.contacts.contact.owner_changed")
    assert sorted(e.subject or "" for e in changed) == sorted(ids)


async def test_consent_changes_are_kept_in_a_ledger_and_published(
    api: httpx.AsyncClient, events: Events
) -> None:
    user = str(uuid.uuid4())
    staff = auth(Role.SALES_REP, user)
    contact = await create(
        api,
        staff,
        email="c@example.com",
        consent={"email": True},
        consent_source="web_form",
    )
    url = f"/contacts/{contact['id']}"
    for consent in (
        {"sms": True, "source": "phone_call"},
        {"email": False, "source": "unsubscribe_link"},
        {"email": False, "sms": True},  # no change: nothing recorded
    ):
        response = await api.patch(url, json={"consent": consent}, headers=staff)
        assert response.status_code == 200, response.text
    assert (await api.get(url, headers=staff)).json()["consent"] == {"email": False, "sms": True}

    ledger = (await api.get(f"{url}/consent", headers=staff)).json()
    assert [(e["channel"], e["granted"], e["source"]) for e in ledger] == [
        ("email", True, "web_form"),
        ("sms", True, "phone_call"),
        ("email", False, "unsubscribe_link"),
    ]
    assert {e["actor_id"] for e in ledger} == {user}
    published = await wait_for_events(events, 3, "crm.contacts.consent.changed")
    assert [(e.data["channel"], e.data["granted"]) for e in published] == [
        ("email", True),
        ("sms", True),
        ("email", False),
    ]
    assert published[2].data["email"] == "c@example.com"
    assert (await api.get(f"{url}/consent", headers=auth(Role.SALES_REP))).status_code == 404


async def test_audit_log_is_for_admins_and_holds_before_and_after(
    api: httpx.AsyncClient,
) -> None:
    contact = await create(api, last_name="Before")
    url = f"/contacts/{contact['id']}"
    await api.patch(url, json={"last_name": "After"}, headers=auth())
    await api.delete(url, headers=auth())
    await create(api, first_name="Unrelated")
    for role in (Role.SALES_REP, Role.HEAD_OF_SALES, Role.MARKETER):
        assert (await api.get("/audit", headers=auth(role))).status_code == 403

    entries = (await api.get("/audit", params={"record_id": contact["id"]}, headers=auth())).json()[
        "items"
    ]
    assert [e["action"] for e in entries] == ["delete", "update", "create"]  # newest first
    update = entries[1]
    assert update["record_type"] == "contact"
    assert update["before"]["last_name"] == "Before" and update["after"]["last_name"] == "After"
    assert entries[2]["before"] is None and entries[0]["after"]["deleted_at"] is not None
    assert all(e["actor_id"] and e["at"] for e in entries)
    page = (await api.get("/audit", params={"limit": 2}, headers=auth())).json()
    assert len(page["items"]) == 2 and page["next_cursor"]


async def test_list_filters_by_team_tag_and_time(api: httpx.AsyncClient, bus: Bus) -> None:
    team = str(uuid.uuid4())
    first, second, outsider = (str(uuid.uuid4()) for _ in range(3))
    for user_id, teams in ((first, [team]), (second, [team]), (outsider, [])):
        await bus.publish(user_created(user_id, Role.SALES_REP, teams).envelope())
    a = await create(api, owner_id=first, tags=["vip", "b2b"])
    b = await create(api, owner_id=second, tags=["b2b"])
    c = await create(api, owner_id=outsider, tags=["vip"])

    async def listed(headers: dict[str, str] | None = None, **params: str) -> list[str]:
        response = await api.get("/contacts", params=params, headers=headers or auth())
        assert response.status_code == 200, response.text
        return sorted(item["id"] for item in response.json()["items"])

    async def team_known() -> bool:
        return await listed(team_id=team) == sorted([a["id"], b["id"]])

    await wait_until(team_known, timeout=30, message="the directory to know the team")
    assert await listed(auth(Role.SALES_REP, outsider), team_id=team) == []
    assert await listed(tag="vip") == sorted([a["id"], c["id"]])
    assert await listed(tag="b2b", team_id=team) == sorted([a["id"], b["id"]])
    assert await listed(tag="none") == []
    assert await listed(created_after=b["created_at"]) == sorted([b["id"], c["id"]])
    assert await listed(created_before=b["created_at"]) == [a["id"]]
    await api.patch(f"/contacts/{a['id']}", json={"position": "CEO"}, headers=auth())
    assert await listed(updated_after=c["updated_at"]) == sorted([a["id"], c["id"]])
    assert await listed(updated_before=c["created_at"], tag="b2b") == [b["id"]]
    naive = await api.get(
        "/contacts", params={"created_after": "2026-01-01T00:00:00"}, headers=auth()
    )
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "created_after"
