"""`GET /contacts?filter=`: the segments' filter language on the contact list, with visibility."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from crm_contacts.testing import auth
from crm_kernel.auth import Role

VIP_COMMITTED_BIG = {
    "all": [
        {"field": "tags", "op": "has", "value": "vip"},
        {"field": "lifecycle_stage", "op": "in", "value": ["commitment", "expansion"]},
        {"field": "custom.budget", "op": "gte", "value": 1000},
    ]
}


async def contact(api: httpx.AsyncClient, owner: str, **fields: Any) -> str:
    body = {"first_name": "F", "owner_id": owner, **fields}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def listed(
    api: httpx.AsyncClient, headers: dict[str, str], raw: object, **params: Any
) -> list[str]:
    """Every id the list gives for this filter, following cursors one contact at a time."""
    found: list[str] = []
    cursor = None
    for _ in range(20):
        query = {"filter": json.dumps(raw), "limit": 1, **params}
        page = await api.get(
            "/contacts", params={**query, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        assert page.status_code == 200, page.text
        found += [c["id"] for c in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("more pages than contacts")


async def test_filter_on_tags_lifecycle_and_custom_field_returns_exactly_the_visible_matches(
    api: httpx.AsyncClient,
) -> None:
    field = await api.post(
        "/custom-fields",
        json={"key": "budget", "label": "Budget", "type": "number"},
        headers=auth(),
    )
    assert field.status_code == 201, field.text
    rep, other = str(uuid.uuid4()), str(uuid.uuid4())
    big = {"budget": 5000}
    match = await contact(api, rep, tags=["vip"], lifecycle_stage="commitment", custom=big)
    also = await contact(api, rep, tags=["vip", "b2b"], lifecycle_stage="expansion", custom=big)
    await contact(api, rep, tags=["vip"], lifecycle_stage="awareness", custom=big)
    await contact(api, rep, tags=["cold"], lifecycle_stage="commitment", custom=big)
    await contact(api, rep, tags=["vip"], lifecycle_stage="commitment", custom={"budget": 10})
    await contact(api, rep, tags=["vip"], lifecycle_stage="commitment")
    theirs = await contact(api, other, tags=["vip"], lifecycle_stage="commitment", custom=big)

    assert set(await listed(api, auth(), VIP_COMMITTED_BIG)) == {match, also, theirs}
    as_rep = auth(Role.SALES_REP, rep)
    mine = await listed(api, as_rep, VIP_COMMITTED_BIG)
    assert sorted(mine) == sorted([match, also])  # each once across the pages, none of theirs
    # Asking for another owner's contacts by filter or parameter still shows none of them.
    theirs_filter = {"field": "owner_id", "op": "eq", "value": other}
    assert await listed(api, as_rep, theirs_filter) == []
    assert await listed(api, as_rep, VIP_COMMITTED_BIG, owner_id=other) == []
    # It combines with the list's own parameters.
    assert await listed(api, as_rep, VIP_COMMITTED_BIG, tag="b2b") == [also]
    assert await listed(api, auth(), VIP_COMMITTED_BIG, lifecycle_stage="expansion") == [also]
    negated = {"not": {"field": "tags", "op": "has_any", "value": ["vip", "cold"]}}
    assert await listed(api, as_rep, negated) == []


async def test_a_bad_filter_is_a_422_problem_naming_its_part(api: httpx.AsyncClient) -> None:
    await api.post(
        "/custom-fields",
        json={"key": "budget", "label": "Budget", "type": "number"},
        headers=auth(),
    )
    cases: list[tuple[str, str]] = [
        ("{not json", "filter"),
        (json.dumps({"field": "password", "op": "eq", "value": "x"}), "filter.field"),
        (json.dumps({"field": "tags", "op": "gte", "value": "vip"}), "filter.op"),
        (json.dumps({"field": "custom.budget", "op": "gt", "value": "lots"}), "filter.value"),
        (
            json.dumps({"all": [{"field": "lifecycle_stage", "op": "eq", "value": "asleep"}]}),
            "filter.all.0.value",
        ),
        (json.dumps({"field": "email", "op": "eq", "value": "a", "sql": "1=1"}), "filter.sql"),
        ("[" * 5000 + "]" * 3000, "filter"),
    ]
    for raw, field in cases:
        response = await api.get(
            "/contacts", params={"filter": raw}, headers=auth(Role.SALES_REP, str(uuid.uuid4()))
        )
        assert response.status_code == 422, (raw, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        error = response.json()["errors"][0]
        assert error["field"] == field, (raw, error)
        assert error["location"] == "query"
    too_long = await api.get("/contacts", params={"filter": "x" * 8001}, headers=auth())
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "filter"
