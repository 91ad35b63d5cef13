"""The permission matrix: every role against every endpoint, on records it may and may not see.

Teams come from the directory this service keeps from the gateway's user
events, so the test publishes those events and waits until they are applied.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

import httpx

from crm_contacts.testing import auth, user_created
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.testing import wait_until

TEAM, OTHER_TEAM = str(uuid.uuid4()), str(uuid.uuid4())


@dataclass(frozen=True)
class Staff:
    admin: str
    head: str  # head of sales of TEAM
    rep: str  # sales rep in TEAM
    outsider: str  # sales rep in OTHER_TEAM
    marketer: str
    # The contact used to see that the directory knows the team (now in the trash).
    probe: str = ""

    def name(self, who: str) -> str:
        """Which of the staff an id is, for readable failures."""
        return next(f.name for f in dataclasses.fields(self) if getattr(self, f.name) == who)

    def headers(self, who: str) -> dict[str, str]:
        role = {
            self.admin: Role.ADMIN,
            self.head: Role.HEAD_OF_SALES,
            self.rep: Role.SALES_REP,
            self.outsider: Role.SALES_REP,
            self.marketer: Role.MARKETER,
        }[who]
        return auth(role, who)


async def staff_in_directory(api: httpx.AsyncClient, bus: Bus) -> Staff:
    """Users published as the gateway would, once the service's directory has them."""
    staff = Staff(*(str(uuid.uuid4()) for _ in range(5)))
    for user_id, role, teams in (
        (staff.admin, Role.ADMIN, []),
        (staff.head, Role.HEAD_OF_SALES, [TEAM]),
        (staff.rep, Role.SALES_REP, [TEAM]),
        (staff.outsider, Role.SALES_REP, [OTHER_TEAM]),
        (staff.marketer, Role.MARKETER, []),
    ):
        await bus.publish(user_created(user_id, role, teams).envelope())
    probe = await create(api, "contacts", staff.rep)

    async def head_sees_team() -> bool:
        url = f"/contacts/{probe}"
        return (await api.get(url, headers=staff.headers(staff.head))).status_code == 200

    await wait_until(head_sees_team, timeout=30, message="the directory to know the team")
    assert (await api.delete(f"/contacts/{probe}", headers=auth())).status_code == 204
    return dataclasses.replace(staff, probe=probe)


async def create(api: httpx.AsyncClient, kind: str, owner: str, *, trashed: bool = False) -> str:
    """A new contact or company owned by `owner`, made by an admin (optionally in the trash)."""
    body = {"first_name": "P"} if kind == "contacts" else {"name": "P"}
    response = await api.post(f"/{kind}", json={**body, "owner_id": owner}, headers=auth())
    assert response.status_code == 201, response.text
    record_id = str(response.json()["id"])
    if trashed:
        assert (await api.delete(f"/{kind}/{record_id}", headers=auth())).status_code == 204
    return record_id


async def attempt_on_activity(
    api: httpx.AsyncClient, staff: Staff, action: str, actor: str, owner: str
) -> int:
    """The status `actor` gets doing `action` on an activity of a fresh contact of `owner`."""
    contact_id = await create(api, "contacts", owner)
    logged = await api.post(
        "/activities",
        json={"contact_id": contact_id, "type": "call", "summary": "s"},
        headers=auth(),
    )
    assert logged.status_code == 201, logged.text
    url = f"/activities/{logged.json()['id']}"
    headers = staff.headers(actor)
    if action == "read":
        return (await api.get(url, headers=headers)).status_code
    if action == "timeline":
        return (await api.get(f"/contacts/{contact_id}/timeline", headers=headers)).status_code
    if action == "patch":
        return (await api.patch(url, json={"summary": "Changed"}, headers=headers)).status_code
    if action == "delete":
        return (await api.delete(url, headers=headers)).status_code
    if action == "log":
        body = {"contact_id": contact_id, "type": "note", "summary": "n"}
        return (await api.post("/activities", json=body, headers=headers)).status_code
    raise AssertionError(action)


async def attempt_on_request_or_task(
    api: httpx.AsyncClient, staff: Staff, kind: str, action: str, actor: str, owner: str
) -> int:
    """The status `actor` gets doing `action` on a request/task on a fresh contact of `owner`.

    The task is assigned to the contact's owner, so both ways of seeing it agree.
    """
    contact_id = await create(api, "contacts", owner)
    body: dict[str, object] = (
        {"contact_id": contact_id, "subject": "s"}
        if kind == "requests"
        else {"contact_id": contact_id, "title": "t", "due_at": "2030-01-01T00:00:00Z"}
    )
    made = await api.post(
        f"/{kind}",
        json={**body, **({"assignee_id": owner} if kind == "tasks" else {})},
        headers=auth(),
    )
    assert made.status_code == 201, made.text
    url = f"/{kind}/{made.json()['id']}"
    headers = staff.headers(actor)
    if action == "read":
        return (await api.get(url, headers=headers)).status_code
    if action == "listed":
        listed = await api.get(f"/{kind}", params={"contact_id": contact_id}, headers=headers)
        return OK if [r["id"] for r in listed.json()["items"]] == [made.json()["id"]] else GONE
    if action == "patch":
        change = {"status": "in_progress"} if kind == "requests" else {"status": "done"}
        return (await api.patch(url, json=change, headers=headers)).status_code
    if action == "delete":
        return (await api.delete(url, headers=headers)).status_code
    if action == "open":
        return (await api.post(f"/{kind}", json=body, headers=headers)).status_code
    raise AssertionError(action)


def request_and_task_expectations(kind: str, contact: dict[str, int]) -> dict[str, int]:
    """Requests and tasks follow their contact; opening on an unseen contact names it (422)."""
    expected = {
        "read": contact["read"],
        "listed": contact["read"],
        "patch": contact["patch"],
        "open": {OK: 201, GONE: 422, NO: NO}[contact["patch"]],
    }
    if kind == "tasks":
        expected["delete"] = contact["delete"]
    return expected


def activity_expectations(contact: dict[str, int]) -> dict[str, int]:
    """Activities follow their contact; logging on an unseen contact names `contact_id` (422)."""
    return {
        "read": contact["read"],
        "timeline": contact["read"],
        "patch": contact["patch"],
        "delete": contact["delete"],
        "log": {OK: 201, GONE: 422, NO: NO}[contact["patch"]],
    }


async def attempt(
    api: httpx.AsyncClient, staff: Staff, kind: str, action: str, actor: str, owner: str
) -> int:
    """The status `actor` gets doing `action` on a fresh record of `owner`."""
    record_id = await create(api, kind, owner, trashed=action == "restore")
    url = f"/{kind}/{record_id}"
    headers = staff.headers(actor)
    if action == "read":
        return (await api.get(url, headers=headers)).status_code
    if action == "consent":
        return (await api.get(f"{url}/consent", headers=headers)).status_code
    if action == "patch":
        field = "last_name" if kind == "contacts" else "name"
        return (await api.patch(url, json={field: "Changed"}, headers=headers)).status_code
    if action == "delete":
        return (await api.delete(url, headers=headers)).status_code
    if action == "restore":
        return (await api.post(f"{url}/restore", headers=headers)).status_code
    if action == "take":  # make themselves the owner
        return (
            await api.post(f"{url}/reassign", json={"owner_id": actor}, headers=headers)
        ).status_code
    if action == "give_outside":  # hand it to someone outside the team
        return (
            await api.post(f"{url}/reassign", json={"owner_id": staff.outsider}, headers=headers)
        ).status_code
    raise AssertionError(action)


async def attempt_on_contact(
    api: httpx.AsyncClient, staff: Staff, action: str, actor: str, owner: str
) -> int:
    """The status `actor` gets on the duplicate, merge, erase and viewer endpoints."""
    contact_id = await create(api, "contacts", owner)
    url, headers = f"/contacts/{contact_id}", staff.headers(actor)
    if action == "duplicates":
        return (await api.get(f"{url}/duplicates", headers=headers)).status_code
    if action == "merge":  # another contact of the same owner into this one
        other = await create(api, "contacts", owner)
        body = {"other_id": other}
        return (await api.post(f"{url}/merge", json=body, headers=headers)).status_code
    if action == "merge_from":  # this contact into one of the actor's own
        own = await create(api, "contacts", actor)
        body = {"other_id": contact_id}
        return (await api.post(f"/contacts/{own}/merge", json=body, headers=headers)).status_code
    if action == "erase":
        return (await api.post(f"{url}/erase", headers=headers)).status_code
    if action == "viewers":
        return (await api.get(f"{url}/viewers", headers=headers)).status_code
    raise AssertionError(action)


def contact_extra_expectations(s: Staff, actor: str, contact: dict[str, int]) -> dict[str, int]:
    """Duplicates follow reading; merging needs the right to change both; erase and viewers
    are for admins alone (403 for everyone else, whoever owns the contact)."""
    admin_only = {s.admin: 204}.get(actor, NO)
    return {
        "duplicates": contact["read"],
        "merge": contact["patch"],
        "merge_from": contact["patch"],
        "erase": admin_only,
        "viewers": OK if actor == s.admin else NO,
    }


# (actor, owner of the record) -> expected status per action.
OK, GONE, NO = 200, 404, 403
DELETED = 204


def expectations(s: Staff) -> dict[tuple[str, str], dict[str, int]]:
    everything = {
        "read": OK,
        "consent": OK,
        "patch": OK,
        "delete": DELETED,
        "restore": OK,
        "take": OK,
        "give_outside": OK,
    }
    return {
        (s.admin, s.rep): everything,
        (s.admin, s.outsider): everything,
        (s.head, s.rep): {**everything, "give_outside": NO},
        (s.head, s.head): {**everything, "give_outside": NO},
        (s.head, s.outsider): {
            "read": GONE,
            "consent": GONE,
            "patch": GONE,
            "delete": GONE,
            "restore": GONE,
            "take": GONE,
            "give_outside": GONE,
        },
        (s.rep, s.rep): {
            "read": OK,
            "consent": OK,
            "patch": OK,
            "delete": DELETED,
            "restore": NO,
            "take": NO,
            "give_outside": NO,
        },
        (s.rep, s.outsider): {
            "read": GONE,
            "consent": GONE,
            "patch": GONE,
            "delete": GONE,
            "restore": NO,
            "take": NO,
            "give_outside": NO,
        },
        (s.rep, s.head): {
            "read": GONE,
            "consent": GONE,
            "patch": GONE,
            "delete": GONE,
            "restore": NO,
            "take": NO,
            "give_outside": NO,
        },
        (s.marketer, s.rep): {
            "read": OK,
            "consent": OK,
            "patch": NO,
            "delete": NO,
            "restore": NO,
            "take": NO,
            "give_outside": NO,
        },
        (s.marketer, s.marketer): {
            "read": OK,
            "consent": OK,
            "patch": OK,
            "delete": DELETED,
            "restore": NO,
            "take": NO,
            "give_outside": NO,
        },
    }


async def test_each_role_reaches_exactly_the_records_it_may(
    api: httpx.AsyncClient, bus: Bus
) -> None:
    staff = await staff_in_directory(api, bus)
    mismatches = []
    for kind in ("contacts", "companies"):
        for (actor, owner), expected in expectations(staff).items():
            for action, status in expected.items():
                if kind == "companies" and action == "consent":
                    continue
                got = await attempt(api, staff, kind, action, actor, owner)
                if got != status:
                    mismatches.append(
                        (kind, action, staff.name(actor), staff.name(owner), status, got)
                    )
    for (actor, owner), expected in expectations(staff).items():
        for action, status in contact_extra_expectations(staff, actor, expected).items():
            got = await attempt_on_contact(api, staff, action, actor, owner)
            if got != status:
                mismatches.append(
                    ("contacts", action, staff.name(actor), staff.name(owner), status, got)
                )
    for (actor, owner), expected in expectations(staff).items():
        for action, status in activity_expectations(expected).items():
            got = await attempt_on_activity(api, staff, action, actor, owner)
            if got != status:
                mismatches.append(
                    ("activities", action, staff.name(actor), staff.name(owner), status, got)
                )
    for kind in ("requests", "tasks"):
        for (actor, owner), expected in expectations(staff).items():
            for action, status in request_and_task_expectations(kind, expected).items():
                got = await attempt_on_request_or_task(api, staff, kind, action, actor, owner)
                if got != status:
                    mismatches.append(
                        (kind, action, staff.name(actor), staff.name(owner), status, got)
                    )
    assert mismatches == [], mismatches


async def test_lists_never_show_another_owners_records(api: httpx.AsyncClient, bus: Bus) -> None:
    staff = await staff_in_directory(api, bus)
    owners = (staff.head, staff.rep, staff.outsider, staff.marketer)
    visible = {
        staff.admin: set(owners),
        staff.marketer: set(owners),
        staff.head: {staff.head, staff.rep},
        staff.rep: {staff.rep},
        staff.outsider: {staff.outsider},
    }
    may_use_trash = {staff.admin, staff.head}
    for kind in ("contacts", "companies"):
        live = {owner: await create(api, kind, owner) for owner in owners}
        trashed = {owner: await create(api, kind, owner, trashed=True) for owner in owners}
        for actor, owners_seen in visible.items():
            headers = staff.headers(actor)
            listed = (await api.get(f"/{kind}", headers=headers)).json()["items"]
            assert {r["id"] for r in listed} == {live[o] for o in owners_seen}, (kind, actor)
            for owner in owners:
                filtered = await api.get(f"/{kind}", params={"owner_id": owner}, headers=headers)
                ids = {r["id"] for r in filtered.json()["items"]}
                assert ids == ({live[owner]} if owner in owners_seen else set()), (kind, actor)
            trash = await api.get(f"/{kind}", params={"trash": "true"}, headers=headers)
            if actor in may_use_trash:
                ids = {r["id"] for r in trash.json()["items"]} - {staff.probe}
                assert ids == {trashed[o] for o in owners_seen}, (kind, actor)
            else:
                assert trash.status_code == 403, (kind, actor)
    # Activities are listed only through contacts the caller sees.
    logged = {}
    for owner in owners:
        contact_id = await create(api, "contacts", owner)
        body = {"contact_id": contact_id, "type": "call", "summary": "s"}
        logged[owner] = (await api.post("/activities", json=body, headers=auth())).json()["id"]
    for actor, owners_seen in visible.items():
        listed = (await api.get("/activities", headers=staff.headers(actor))).json()["items"]
        assert {a["id"] for a in listed} == {logged[o] for o in owners_seen}, actor


async def test_bulk_reassign_by_head_stops_at_the_team_boundary(
    api: httpx.AsyncClient, bus: Bus
) -> None:
    staff = await staff_in_directory(api, bus)
    team_contact = await create(api, "contacts", staff.rep)
    outside_contact = await create(api, "contacts", staff.outsider)
    head = staff.headers(staff.head)
    mixed = await api.post(
        "/contacts/reassign",
        json={"ids": [team_contact, outside_contact], "owner_id": staff.head},
        headers=head,
    )
    assert mixed.status_code == 404
    assert (await api.get(f"/contacts/{team_contact}", headers=auth())).json()[
        "owner_id"
    ] == staff.rep
    outside_owner = await api.post(
        "/contacts/reassign", json={"ids": [team_contact], "owner_id": staff.outsider}, headers=head
    )
    assert outside_owner.status_code == 403
    assert outside_owner.json()["errors"][0]["field"] == "owner_id"
    within = await api.post(
        "/contacts/reassign", json={"ids": [team_contact], "owner_id": staff.head}, headers=head
    )
    assert within.status_code == 200
    assert (await api.get(f"/contacts/{team_contact}", headers=head)).json()[
        "owner_id"
    ] == staff.head
    # A rep may create only for themselves; a head of sales for their team.
    for actor, owner, status in (
        (staff.rep, staff.head, 403),
        (staff.head, staff.rep, 201),
        (staff.head, staff.outsider, 403),
        (staff.marketer, staff.rep, 403),
    ):
        response = await api.post(
            "/contacts",
            json={"first_name": "N", "owner_id": owner},
            headers=staff.headers(actor),
        )
        assert response.status_code == status, (actor, owner, response.text)
