"""Stored exports and privacy: an erased person leaves them; their CSV expires (410)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from crm_contacts.audit.models import AuditEntry
from crm_contacts.common import utcnow
from crm_contacts.exports import csvout
from crm_contacts.exports.models import ContactExport
from crm_contacts.exports.retention import purge_expired
from crm_contacts.main import create_app
from crm_contacts.settings import ContactsSettings
from crm_contacts.testing import auth
from crm_kernel.db import Database
from crm_kernel.testing import TEST_JWT_SECRET, serve_in_process

DAY = timedelta(hours=24)


async def contact(api: httpx.AsyncClient, **fields: Any) -> str:
    body = {"first_name": "Anna", "owner_id": str(uuid.uuid4()), **fields}
    response = await api.post("/contacts", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def export(api: httpx.AsyncClient, **filters: Any) -> dict[str, Any]:
    response = await api.post("/exports", json=filters, headers=auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def download(api: httpx.AsyncClient, export_id: str) -> httpx.Response:
    return await api.get(f"/exports/{export_id}/download", headers=auth())


async def test_an_erased_person_leaves_every_stored_export(api: httpx.AsyncClient) -> None:
    anna = await contact(
        api, last_name="Петрова", email="anna@example.com", phone="+7 912 345-67-89"
    )
    boris = await contact(api, first_name="Борис", position="line one\nline two")
    everyone = await export(api)
    by_mail = await export(api, q="anna@example.com")
    by_phone = await export(api, filter={"field": "phone", "op": "eq", "value": "+7 912 345-67-89"})
    assert (everyone["row_count"], by_mail["row_count"]) == (2, 1)
    before = (await download(api, everyone["id"])).content

    assert (await api.post(f"/contacts/{anna}/erase", headers=auth())).status_code == 204

    after = await download(api, everyone["id"])
    assert after.status_code == 200
    rows = csvout.without_row(before, anna)[0]
    assert after.content == rows  # Boris's row (a line break in a cell) byte for byte
    text = after.content.decode("utf-8-sig")
    assert anna not in text and "Петрова" not in text and "anna@example.com" not in text
    assert boris in text and "line one\nline two" in text
    assert (await api.get(f"/exports/{everyone['id']}", headers=auth())).json()["row_count"] == 1
    emptied = await download(api, by_mail["id"])
    assert emptied.content.decode("utf-8-sig").splitlines() == [",".join(csvout.COLUMNS)]

    # The e-mail and phone searched for are gone from the export records and their audit rows.
    for made in (by_mail, by_phone):
        record = (await api.get(f"/exports/{made['id']}", headers=auth())).json()
        audit = await api.get(
            "/audit", params={"record_type": "export", "record_id": made["id"]}, headers=auth()
        )
        [entry] = audit.json()["items"]
        for filters in (record["filters"], entry["after"]["filters"]):
            assert "anna@example.com" not in str(filters) and "912" not in str(filters)
    record = (await api.get(f"/exports/{by_phone['id']}", headers=auth())).json()
    assert record["filters"]["filter"] == {"field": "phone", "op": "eq", "value": None}
    erase = await api.get("/audit", params={"action": "erase"}, headers=auth())
    assert erase.json()["items"][0]["after"]["exports"] == 2


async def test_an_erasure_committed_during_the_build_is_left_out(
    api: httpx.AsyncClient, db_url: str
) -> None:
    """The export read the contact before the erasure committed, and the erasure scanned the
    stored exports before this one was stored: the export's own check must drop the row."""
    caught, kept = await contact(api, email="caught@example.com"), await contact(api)
    db = Database(db_url)
    try:
        async with db.transaction() as session:  # what the erasure leaves in the audit log
            session.add(
                AuditEntry(
                    id=str(uuid.uuid4()),
                    at=utcnow() - timedelta(seconds=5),  # it began before the export did
                    actor_id=None,
                    action="erase",
                    record_type="contact",
                    record_id=caught,
                    before=None,
                    after=None,
                )
            )
    finally:
        await db.dispose()
    made = await export(api)
    assert made["row_count"] == 1
    rows = (await download(api, made["id"])).content.decode("utf-8-sig")
    assert kept in rows and caught not in rows and "caught@example.com" not in rows


def test_only_the_erased_row_goes_even_when_another_cell_holds_its_id() -> None:
    erased, other = str(uuid.uuid4()), str(uuid.uuid4())
    header = ",".join(csvout.COLUMNS)
    content = (
        f'\ufeff{header}\r\n{erased},A\r\n{other},"says {erased}\r\nin two lines"\r\n'
    ).encode()
    kept, removed = csvout.without_row(content, erased)
    assert removed == 1
    assert kept == f'\ufeff{header}\r\n{other},"says {erased}\r\nin two lines"\r\n'.encode()


async def age(db: Database, export_id: str, by: timedelta) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(ContactExport)
            .where(ContactExport.id == export_id)
            .values(created_at=utcnow() - by)
        )


async def stored(db: Database, export_id: str) -> bytes | None:
    async with db.session() as session:
        return await session.scalar(
            select(ContactExport.content).where(ContactExport.id == export_id)
        )


async def test_an_expired_export_answers_410_and_its_record_stays(
    api: httpx.AsyncClient, db_url: str
) -> None:
    await contact(api, email="kept@example.com")
    made = await export(api)
    assert made["purged_at"] is None
    created = made["created_at"].replace("Z", "+00:00")
    assert made["expires_at"].replace("Z", "+00:00") > created
    assert (await download(api, made["id"])).status_code == 200
    db = Database(db_url)
    try:
        await age(db, made["id"], DAY + timedelta(minutes=1))
        gone = await download(api, made["id"])
        assert gone.status_code == 410
        assert gone.headers["content-type"].startswith("application/problem+json")
        problem = gone.json()
        assert problem["status"] == 410 and problem["type"] == "/problems/gone"
        assert "expired" in problem["detail"]
        assert await stored(db, made["id"]) is None  # deleted on read, not only hidden
        record = await api.get(f"/exports/{made['id']}", headers=auth())
        assert record.status_code == 200
        assert record.json()["row_count"] == 1 and record.json()["purged_at"] is not None
        audit = await api.get(
            "/audit", params={"record_type": "export", "record_id": made["id"]}, headers=auth()
        )
        assert len(audit.json()["items"]) == 1
        assert (await download(api, made["id"])).status_code == 410  # and stays gone
    finally:
        await db.dispose()


async def test_the_pruner_deletes_expired_files_only(api: httpx.AsyncClient, db_url: str) -> None:
    await contact(api)
    old, fresh = await export(api), await export(api)
    db = Database(db_url)
    try:
        await age(db, old["id"], DAY + timedelta(seconds=1))
        assert await purge_expired(db, DAY) == 1
        assert await purge_expired(db, DAY) == 0  # already gone: nothing to do
        assert await stored(db, old["id"]) is None
        assert await stored(db, fresh["id"]) is not None
        assert (await download(api, fresh["id"])).status_code == 200
        assert (await download(api, old["id"])).status_code == 410
    finally:
        await db.dispose()


async def test_a_starting_replica_prunes_without_any_download(
    api: httpx.AsyncClient, db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    await contact(api)
    made = await export(api)
    db = Database(db_url)
    try:
        await age(db, made["id"], timedelta(hours=2))
        settings = ContactsSettings(
            DATABASE_URL=db_url,
            NATS_URL=nats_url,
            CRM_JWT_SECRET=TEST_JWT_SECRET,
            CRM_DATA_DIR=tmp_dir,
            CRM_CONTACTS_EXPORT_RETENTION_HOURS=1,
        )
        async with serve_in_process(create_app(settings)):
            for _ in range(100):  # the pruner's first pass runs at start
                if await stored(db, made["id"]) is None:
                    break
                await asyncio.sleep(0.05)
            assert await stored(db, made["id"]) is None
    finally:
        await db.dispose()
