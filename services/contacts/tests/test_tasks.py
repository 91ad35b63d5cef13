"""Tasks: CRUD with If-Match, completion, overdue lists, visibility by assignee, team and contact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crm_contacts.testing import Events, auth, user_created, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.testing import wait_until


def at(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def contact(api: httpx.AsyncClient, owner: str | None = None) -> str:
    body: dict[str, Any] = {"first_name": "T", **({"owner_id": owner} if owner else {})}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def add_task(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"title": "Call back", "due_at": at(days=1), **fields}
    response = await api.post("/tasks", json=body, headers=headers or auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


async def test_task_changes_are_versioned_audited_and_published(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep = str(uuid.uuid4())
    contact_id = await contact(api, rep)
    as_rep = auth(Role.SALES_REP, rep)
    task = await add_task(
        api,
        as_rep,
        contact_id=contact_id,
        due_at="2030-01-01T12:00:00+03:00",
        remind_before_minutes=30,
    )
    assert task["assignee_id"] == rep and task["status"] == "open"
    assert task["due_at"].startswith("2030-01-01T09:00:00") and task["remind_before_minutes"] == 30
    url = f"/tasks/{task['id']}"
    fetched = await api.get(url, headers=as_rep)
    assert fetched.json() == task and fetched.headers["etag"] == '"1"'

    stale = await api.patch(url, json={"title": "x"}, headers={**as_rep, "If-Match": '"0"'})
    assert stale.status_code == 412
    changed = await api.patch(
        url,
        json={"title": "Send offer", "remind_before_minutes": None},
        headers={**as_rep, "If-Match": "1"},
    )
    assert changed.status_code == 200, changed.text
    assert (
        changed.json()["title"] == "Send offer" and changed.json()["remind_before_minutes"] is None
    )
    done = await api.patch(url, json={"status": "done", "version": 2}, headers=as_rep)
    assert done.json()["status"] == "done" and done.json()["completed_at"] is not None
    reopened = await api.patch(url, json={"status": "open"}, headers=as_rep)
    assert reopened.json()["completed_at"] is None and reopened.json()["version"] == 4
    assert (await api.delete(url, headers={**as_rep, "If-Match": "4"})).status_code == 204
    assert (await api.get(url, headers=auth())).status_code == 404

    kinds = ("created", "updated", "completed", "deleted")
    found = await wait_for_events(events, 5, *(f"crm.contacts.task.{k}" for k in kinds))
    assert [(e.type.rsplit(".", 1)[1], e.data["version"]) for e in found] == [
        ("created", 1),
        ("updated", 2),
        ("completed", 3),
        ("updated", 4),
        ("deleted", 5),
    ]
    assert (
        found[0].data["contact_id"] == contact_id and found[0].data["remind_before_minutes"] == 30
    )
    assert found[4].data["deleted_at"] is not None
    audit = (await api.get("/audit", params={"record_type": "task"}, headers=auth())).json()
    assert [e["action"] for e in audit["items"]] == ["delete"] + ["update"] * 3 + ["create"]


async def test_heads_see_their_teams_tasks_and_overdue_ones(
    api: httpx.AsyncClient, bus: Bus
) -> None:
    team, head, rep, outsider = (str(uuid.uuid4()) for _ in range(4))
    for user_id, role, teams in (
        (head, Role.HEAD_OF_SALES, [team]),
        (rep, Role.SALES_REP, [team]),
        (outsider, Role.SALES_REP, [str(uuid.uuid4())]),
    ):
        await bus.publish(user_created(user_id, role, teams).envelope())
    as_head, as_rep, as_outsider = (
        auth(Role.HEAD_OF_SALES, head),
        auth(Role.SALES_REP, rep),
        auth(Role.SALES_REP, outsider),
    )
    deal = str(uuid.uuid4())
    late = await add_task(api, as_rep, deal_id=deal, due_at=at(hours=-1))
    later = await add_task(api, as_rep, deal_id=deal, due_at=at(hours=1))
    finished = await add_task(api, as_rep, deal_id=deal, due_at=at(hours=-2))
    await api.patch(f"/tasks/{finished['id']}", json={"status": "done"}, headers=as_rep)
    foreign = await add_task(api, as_outsider, deal_id=deal, due_at=at(hours=-1))
    # Assigned to the rep on the outsider's contact: the rep sees it, the outsider too.
    outsiders_contact = await contact(api, outsider)
    assigned = await add_task(api, auth(), contact_id=outsiders_contact, assignee_id=rep)

    async def head_sees_team() -> bool:
        return (await api.get(f"/tasks/{late['id']}", headers=as_head)).status_code == 200

    await wait_until(head_sees_team, timeout=30, message="the directory to know the team")
    overdue = {"overdue": "true"}
    assert ids(await api.get("/tasks", params=overdue, headers=as_head)) == [late["id"]]
    everyones = ids(await api.get("/tasks", params=overdue, headers=auth()))
    assert everyones == [late["id"], foreign["id"]]  # soonest due first
    assert set(ids(await api.get("/tasks", headers=as_rep))) == {
        late["id"],
        later["id"],
        finished["id"],
        assigned["id"],
    }
    assert (
        ids(await api.get("/tasks", params={"overdue": "false"}, headers=as_rep))[0]
        == finished["id"]
    )
    assert set(ids(await api.get("/tasks", headers=as_outsider))) == {foreign["id"], assigned["id"]}
    assert (await api.get(f"/tasks/{late['id']}", headers=as_outsider)).status_code == 404
    hidden = await api.patch(f"/tasks/{late['id']}", json={"title": "x"}, headers=as_outsider)
    assert hidden.status_code == 404
    assert ids(
        await api.get("/tasks", params={"contact_id": outsiders_contact}, headers=as_rep)
    ) == [assigned["id"]]
    page = await api.get("/tasks", params={"limit": 2, "sort": "-due_at"}, headers=as_rep)
    rest = await api.get(
        "/tasks",
        params={"limit": 2, "sort": "-due_at", "cursor": page.json()["next_cursor"]},
        headers=as_rep,
    )
    assert ids(page) + ids(rest) == [assigned["id"], later["id"], late["id"], finished["id"]]


async def test_bad_task_input_is_a_problem_naming_the_field(api: httpx.AsyncClient) -> None:
    rep = str(uuid.uuid4())
    contact_id = await contact(api, rep)
    others = await contact(api, str(uuid.uuid4()))
    for body, headers, field, code in (
        ({"title": " "}, auth(), "title", 422),
        ({"due_at": "2030-01-01T10:00:00"}, auth(), "due_at", 422),
        ({"due_at": "tomorrow"}, auth(), "due_at", 422),
        ({"remind_before_minutes": -1}, auth(), "remind_before_minutes", 422),
        ({"remind_before_minutes": "soon"}, auth(), "remind_before_minutes", 422),
        ({"contact_id": None}, auth(), "contact_id", 422),
        ({"contact_id": str(uuid.uuid4())}, auth(), "contact_id", 422),
        ({"contact_id": others}, auth(Role.SALES_REP, rep), "contact_id", 422),
        ({"deal_id": "x"}, auth(), "deal_id", 422),
        ({"status": "done"}, auth(), "status", 422),
        ({"assignee_id": str(uuid.uuid4())}, auth(Role.SALES_REP, rep), "assignee_id", 403),
    ):
        payload = {"title": "t", "due_at": at(days=1), "contact_id": contact_id, **body}
        response = await api.post("/tasks", json=payload, headers=headers)
        assert response.status_code == code, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.text)
    assert (await api.get("/tasks", headers=auth())).json()["items"] == []

    task = await add_task(api, deal_id=str(uuid.uuid4()))
    url = f"/tasks/{task['id']}"
    for body, field in (
        ({"status": "closed"}, "status"),
        ({"due_at": None}, "due_at"),
        ({"deal_id": None}, "deal_id"),
        ({"contact_id": contact_id}, "contact_id"),
    ):
        response = await api.patch(url, json=body, headers=auth())
        assert response.status_code == 422, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.text)
    response = await api.get("/tasks", params={"overdue": "maybe"}, headers=auth())
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "overdue"
