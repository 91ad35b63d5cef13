"""Client requests: the status flow, resolution time, events, filters and visibility via the contact."""

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


async def open_request(
    api: httpx.AsyncClient, contact_id: str, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"contact_id": contact_id, "subject": "Invoice is wrong", **fields}
    response = await api.post("/requests", json=body, headers=headers or auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def move(
    api: httpx.AsyncClient,
    request: dict[str, Any],
    status: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.patch(
        f"/requests/{request['id']}",
        json={"status": status},
        headers={**(headers or auth()), "If-Match": str(request["version"])},
    )


async def test_request_moves_open_in_progress_resolved_and_reopens(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep = str(uuid.uuid4())
    contact_id = await contact(api, rep)
    as_rep = auth(Role.SALES_REP, rep)
    opened = await open_request(api, contact_id, as_rep, description="Twice charged")
    assert opened["status"] == "open" and opened["assignee_id"] == rep
    assert opened["resolved_at"] is None and opened["resolution_seconds"] is None

    skipped = await move(api, opened, "resolved", as_rep)
    assert skipped.status_code == 409, skipped.text
    assert skipped.json()["errors"][0]["field"] == "status"
    started = await move(api, opened, "in_progress", as_rep)
    assert started.status_code == 200 and started.json()["version"] == 2
    stale = await move(api, opened, "resolved", as_rep)  # If-Match still 1
    assert stale.status_code == 412
    resolved = (await move(api, started.json(), "resolved", as_rep)).json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert isinstance(resolved["resolution_seconds"], int) and resolved["resolution_seconds"] >= 0
    assert (await move(api, resolved, "in_progress", as_rep)).status_code == 409
    reopened = (await move(api, resolved, "open", as_rep)).json()
    assert reopened["status"] == "open" and reopened["resolved_at"] is None
    assert reopened["resolution_seconds"] is None and reopened["version"] == 4
    fetched = await api.get(f"/requests/{opened['id']}", headers=as_rep)
    assert fetched.json() == reopened and fetched.headers["etag"] == '"4"'

    kinds = ("opened", "updated", "resolved", "reopened")
    found = await wait_for_events(events, 4, *(f"crm.contacts.request.{k}" for k in kinds))
    assert [(e.type.rsplit(".", 1)[1], e.data["version"]) for e in found] == [
        ("opened", 1),
        ("updated", 2),
        ("resolved", 3),
        ("reopened", 4),
    ]
    assert found[2].data["resolution_seconds"] == resolved["resolution_seconds"]
    assert found[2].data["contact_id"] == contact_id and found[2].data["status"] == "resolved"
    assert found[3].data["resolved_at"] is None
    audit = (await api.get("/audit", params={"record_type": "request"}, headers=auth())).json()
    assert [e["action"] for e in audit["items"]] == ["update"] * 3 + ["create"]


async def test_requests_follow_their_contacts_visibility_and_filter_in_pages(
    api: httpx.AsyncClient,
) -> None:
    rep, other = str(uuid.uuid4()), str(uuid.uuid4())
    mine, theirs = await contact(api, rep), await contact(api, other)
    as_rep = auth(Role.SALES_REP, rep)
    first = await open_request(api, mine, as_rep)
    second = await open_request(api, mine, as_rep)
    hidden = await open_request(api, theirs, auth(Role.SALES_REP, other))
    await move(api, second, "in_progress", as_rep)

    assert (await api.get(f"/requests/{hidden['id']}", headers=as_rep)).status_code == 404
    assert (await move(api, hidden, "in_progress", as_rep)).status_code == 404
    seen = (await api.get("/requests", headers=as_rep)).json()["items"]
    assert [r["id"] for r in seen] == [second["id"], first["id"]]  # newest first
    assert (await api.get("/requests", params={"assignee_id": other}, headers=as_rep)).json()[
        "items"
    ] == []

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    by_status = await api.get("/requests", params={"status": "in_progress"}, headers=auth())
    assert ids(by_status) == [second["id"]]
    by_contact = await api.get("/requests", params={"contact_id": theirs}, headers=auth())
    assert ids(by_contact) == [hidden["id"]]
    page = await api.get("/requests", params={"limit": 2}, headers=auth())
    rest = await api.get(
        "/requests", params={"limit": 2, "cursor": page.json()["next_cursor"]}, headers=auth()
    )
    assert ids(page) + ids(rest) == [hidden["id"], second["id"], first["id"]]
    assert rest.json()["next_cursor"] is None

    # A contact in the trash takes its requests with it.
    assert (await api.delete(f"/contacts/{mine}", headers=auth())).status_code == 204
    assert (await api.get(f"/requests/{first['id']}", headers=auth())).status_code == 404


async def test_bad_request_input_is_a_problem_naming_the_field(api: httpx.AsyncClient) -> None:
    rep = str(uuid.uuid4())
    contact_id = await contact(api, rep)
    others = await contact(api, str(uuid.uuid4()))
    for body, headers, field, code in (
        ({"subject": " "}, auth(), "subject", 422),
        ({"subject": 5}, auth(), "subject", 422),
        ({"status": "resolved"}, auth(), "status", 422),
        ({"contact_id": "x"}, auth(), "contact_id", 422),
        ({"contact_id": str(uuid.uuid4())}, auth(), "contact_id", 422),
        ({"contact_id": others}, auth(Role.SALES_REP, rep), "contact_id", 422),
        ({"assignee_id": str(uuid.uuid4())}, auth(Role.SALES_REP, rep), "assignee_id", 403),
        ({"assignee_id": "nobody"}, auth(), "assignee_id", 422),
    ):
        payload = {"contact_id": contact_id, "subject": "s", **body}
        response = await api.post("/requests", json=payload, headers=headers)
        assert response.status_code == code, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.text)
    assert (await api.get("/requests", headers=auth())).json()["items"] == []

    request = await open_request(api, contact_id)
    url = f"/requests/{request['id']}"
    for body, field in (
        ({"status": "closed"}, "status"),
        ({"status": None}, "status"),
        ({"subject": None}, "subject"),
        ({"opened_at": "2026-01-01T00:00:00Z"}, "opened_at"),
    ):
        response = await api.patch(url, json=body, headers=auth())
        assert response.status_code == 422, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.text)
    for params, field in (({"status": "closed"}, "status"), ({"sort": "resolved_at"}, "sort")):
        response = await api.get("/requests", params=params, headers=auth())
        assert 400 <= response.status_code < 500, (params, response.text)
        assert response.json()["errors"][0]["field"] == field
