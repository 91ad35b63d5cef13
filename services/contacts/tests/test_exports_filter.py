"""`POST /exports` with `filter` (the segments' language): exactly the visible matches, 422s."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_contacts.main import create_app
from crm_contacts.settings import ContactsSettings
from crm_contacts.testing import auth
from crm_kernel.auth import Role
from crm_kernel.testing import TEST_JWT_SECRET, serve_in_process

VIP_COMMITTED_BIG = {
    "all": [
        {"field": "tags", "op": "has", "value": "vip"},
        {"field": "lifecycle_stage", "op": "in", "value": ["commitment", "expansion"]},
        {"field": "custom.budget", "op": "gte", "value": 1000},
    ]
}


@pytest.fixture
async def api(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The service with `contacts.export` granted to sales reps too, so a rep can export."""
    settings = ContactsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        CRM_CONTACTS_EXPORT_ROLES="admin,sales_rep",
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as client:
            yield client


async def contact(api: httpx.AsyncClient, owner: str, **fields: Any) -> str:
    body = {"first_name": "X", "owner_id": owner, **fields}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def exported(
    api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The export's record and the ids in its CSV, in file order."""
    created = await api.post("/exports", json=body, headers=headers)
    assert created.status_code == 201, created.text
    download = await api.get(created.json()["download_path"], headers=headers)
    assert download.status_code == 200
    rows = csv.DictReader(io.StringIO(download.content.decode("utf-8-sig")))
    return created.json(), [row["id"] for row in rows]


async def listed(api: httpx.AsyncClient, headers: dict[str, str], raw: object) -> set[str]:
    page = await api.get(
        "/contacts", params={"filter": json.dumps(raw), "limit": 200}, headers=headers
    )
    assert page.status_code == 200, page.text
    return {c["id"] for c in page.json()["items"]}


async def test_filtered_export_holds_exactly_the_visible_matches_and_is_audited(
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
    theirs = await contact(api, other, tags=["vip"], lifecycle_stage="commitment", custom=big)
    deleted = await contact(api, rep, tags=["vip"], lifecycle_stage="commitment", custom=big)
    assert (await api.delete(f"/contacts/{deleted}", headers=auth())).status_code == 204

    record, ids = await exported(api, auth(), {"filter": VIP_COMMITTED_BIG})
    assert sorted(ids) == sorted([match, also, theirs]) and record["row_count"] == 3
    assert set(ids) == await listed(api, auth(), VIP_COMMITTED_BIG)  # the list's very rows

    as_rep = auth(Role.SALES_REP, rep)
    record, ids = await exported(api, as_rep, {"filter": VIP_COMMITTED_BIG})
    assert sorted(ids) == sorted([match, also]) and record["row_count"] == 2
    assert record["filters"] == {"filter": VIP_COMMITTED_BIG}
    # Naming another owner in the filter or the parameters shows the rep none of theirs.
    theirs_filter = {"field": "owner_id", "op": "eq", "value": other}
    assert (await exported(api, as_rep, {"filter": theirs_filter}))[1] == []
    body = {"filter": VIP_COMMITTED_BIG, "owner_id": other}
    assert (await exported(api, as_rep, body))[1] == []
    # The filter narrows the list's own filters further.
    record, ids = await exported(api, as_rep, {"filter": VIP_COMMITTED_BIG, "tag": "b2b"})
    assert ids == [also] and record["row_count"] == 1

    audit = await api.get(
        "/audit",
        params={"record_type": "export", "record_id": record["id"]},
        headers=auth(),
    )
    [entry] = audit.json()["items"]
    assert entry["actor_id"] == rep and entry["after"]["row_count"] == 1
    assert entry["after"]["filters"] == {"filter": VIP_COMMITTED_BIG, "tag": "b2b"}


async def test_a_bad_export_filter_is_a_422_naming_its_part_and_nothing_is_exported(
    api: httpx.AsyncClient,
) -> None:
    await api.post(
        "/custom-fields",
        json={"key": "budget", "label": "Budget", "type": "number"},
        headers=auth(),
    )
    segment = await api.post("/segments", json={"name": "Static", "kind": "static"}, headers=auth())
    assert segment.status_code == 201, segment.text
    stage = {"field": "lifecycle_stage", "op": "eq", "value": "commitment"}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"filter": {"field": "password", "op": "eq", "value": "x"}}, ["filter.field"]),
        ({"filter": {"field": "tags", "op": "gte", "value": "vip"}}, ["filter.op"]),
        ({"filter": {"field": "custom.budget", "op": "gt", "value": "lots"}}, ["filter.value"]),
        (
            {"filter": {"all": [{"field": "lifecycle_stage", "op": "eq", "value": "asleep"}]}},
            ["filter.all.0.value"],
        ),
        ({"filter": {"field": "email", "op": "eq", "value": "a", "sql": "1=1"}}, ["filter.sql"]),
        ({"filter": ["not", "an", "object"]}, ["filter"]),
        # A segment's member list has no filters; ignoring them would export more than asked.
        ({"segment_id": segment.json()["id"], "filter": stage}, ["filter"]),
        ({"segment_id": segment.json()["id"], "tag": "vip", "q": "x"}, ["q", "tag"]),
    ]
    for body, fields in cases:
        response = await api.post("/exports", json=body, headers=auth())
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        errors = response.json()["errors"]
        assert [e["field"] for e in errors] == fields, (body, errors)
        assert {e["location"] for e in errors} == {"body"}
    audit = await api.get("/audit", params={"record_type": "export"}, headers=auth())
    assert audit.json()["items"] == []
