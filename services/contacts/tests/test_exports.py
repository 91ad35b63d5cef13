"""CSV export: only what the caller may see, formulas neutralised, permission, audited."""

from __future__ import annotations

import csv
import io
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


@pytest.fixture
async def reps_export(
    db_url: str, nats_url: str, tmp_dir: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with `contacts.export` granted to sales reps too (CRM_CONTACTS_EXPORT_ROLES)."""
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
    body = {"first_name": "E", "owner_id": owner, **fields}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def rows_of(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads UTF-8
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


async def test_export_holds_only_visible_rows_neutralises_formulas_and_is_audited(
    api: httpx.AsyncClient, reps_export: httpx.AsyncClient
) -> None:
    exporter, other = str(uuid.uuid4()), str(uuid.uuid4())
    evil = await contact(
        api,
        exporter,
        first_name='=HYPERLINK("http://evil")',
        last_name="@SUM(A1)",
        position="-2+3",
        phone="+7 912 345-67-89",
        tags=["vip"],
    )
    plain = await contact(api, exporter, first_name="Ирина", email="irina@example.com")
    await contact(api, other, first_name="Hidden", tags=["vip"])
    await contact(api, other, first_name="Hidden too")

    # By default only admins export; a rep granted contacts.export still gets only their own.
    granted = auth(Role.SALES_REP, exporter)
    denied = await api.post("/exports", json={}, headers=granted)
    assert denied.status_code == 403
    admin_export = await api.post("/exports", json={"tag": "vip"}, headers=auth())
    assert admin_export.status_code == 201, admin_export.text
    assert admin_export.json()["row_count"] == 2

    api = reps_export  # the same database, with reps holding the permission
    created = await api.post("/exports", json={}, headers=granted)
    assert created.status_code == 201, created.text
    export = created.json()
    assert export["row_count"] == 2
    download = await api.get(f"/exports/{export['id']}/download", headers=granted)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = {row["id"]: row for row in rows_of(download.content)}
    assert set(rows) == {evil, plain}
    assert rows[evil]["first_name"] == '\'=HYPERLINK("http://evil")'
    assert rows[evil]["last_name"] == "'@SUM(A1)" and rows[evil]["position"] == "'-2+3"
    assert rows[evil]["phone"] == "'+79123456789" and rows[evil]["tags"] == "vip"
    assert rows[plain]["first_name"] == "Ирина" and rows[plain]["email"] == "irina@example.com"

    # Someone else cannot fetch it; the admin's audit log has it with its row count.
    assert (
        await api.get(f"/exports/{export['id']}", headers=auth(Role.SALES_REP))
    ).status_code == 404
    assert (await api.get(f"/exports/{export['id']}", headers=granted)).json()["row_count"] == 2
    audit = await api.get(
        "/audit", params={"record_type": "export", "record_id": export["id"]}, headers=auth()
    )
    [entry] = audit.json()["items"]
    assert entry["action"] == "export" and entry["actor_id"] == exporter
    assert entry["after"]["row_count"] == 2


async def test_export_of_a_segment_and_filters(api: httpx.AsyncClient) -> None:
    owner = str(uuid.uuid4())
    vip = await contact(api, owner, tags=["vip"], lifecycle_stage="commitment")
    await contact(api, owner, tags=["vip"], lifecycle_stage="awareness")
    segment = await api.post(
        "/segments",
        json={
            "name": "Committed",
            "kind": "dynamic",
            "filter": {"field": "lifecycle_stage", "op": "eq", "value": "commitment"},
        },
        headers=auth(),
    )
    by_segment = await api.post(
        "/exports", json={"segment_id": segment.json()["id"]}, headers=auth()
    )
    assert by_segment.json()["row_count"] == 1
    content = (
        await api.get(f"/exports/{by_segment.json()['id']}/download", headers=auth())
    ).content
    assert [row["id"] for row in rows_of(content)] == [vip]
    by_stage = await api.post("/exports", json={"lifecycle_stage": "awareness"}, headers=auth())
    assert by_stage.json()["row_count"] == 1
    bad = await api.post("/exports", json={"lifecycle_stage": "sleeping"}, headers=auth())
    assert bad.status_code == 422
