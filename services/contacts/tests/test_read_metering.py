"""Read metering: distinct contacts per user per hour, the 429 guard, one alert, who viewed."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crm_contacts.main import create_app
from crm_contacts.metering.service import DatabaseMeter
from crm_contacts.settings import ContactsSettings
from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.testing import TEST_JWT_SECRET, serve_in_process, wait_until

LIMIT = 3


@pytest.fixture(params=["database", "redis"])
async def guarded_api(
    request: pytest.FixtureRequest, db_url: str, nats_url: str, tmp_dir: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with a rep's limit of 3 contacts an hour, metered in the DB or Redis."""
    redis_url = ""
    if request.param == "redis":
        redis_url = os.environ.get("TEST_REDIS_URL", "")
        if not redis_url:
            pytest.skip("TEST_REDIS_URL not set")
    settings = ContactsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        REDIS_URL=redis_url,
        CRM_READ_LIMIT_SALES_REP=LIMIT,
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as client:
            yield client


async def test_bulk_read_guard_trips_and_alerts_once(
    guarded_api: httpx.AsyncClient, events: Events
) -> None:
    api, rep = guarded_api, str(uuid.uuid4())
    as_rep = auth(Role.SALES_REP, rep)
    ids = []
    for n in range(5):
        body = {"first_name": f"C{n}", "owner_id": rep}
        ids.append((await api.post("/contacts", json=body, headers=auth())).json()["id"])

    for contact_id in [*ids[:3], ids[0]]:  # three distinct, one read twice
        assert (await api.get(f"/contacts/{contact_id}", headers=as_rep)).status_code == 200
    refused = await api.get(f"/contacts/{ids[3]}", headers=as_rep)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) > 0
    assert (await api.get(f"/contacts/{ids[4]}/timeline", headers=as_rep)).status_code == 429
    assert (await api.get("/contacts", headers=as_rep)).status_code == 429
    # Refused reads are not recorded: what was read before still reads.
    assert (await api.get(f"/contacts/{ids[1]}", headers=as_rep)).status_code == 200
    # Admins have no limit by default, and other users their own count.
    admin = str(uuid.uuid4())
    assert (await api.get("/contacts", headers=auth(Role.ADMIN, admin))).status_code == 200

    alerts = await wait_for_events(events, 1, "crm.contacts.security.bulk_read_suspected")
    assert alerts[0].data["user_id"] == rep and alerts[0].data["threshold"] == LIMIT
    assert alerts[0].data["distinct_contacts"] == LIMIT + 1
    assert len(await events("crm.contacts.security.bulk_read_suspected")) == 1

    viewers = await api.get(f"/contacts/{ids[0]}/viewers", headers=auth())
    assert viewers.status_code == 200 and [v["user_id"] for v in viewers.json()] == [admin, rep]
    unread = await api.get(f"/contacts/{ids[3]}/viewers", headers=auth())
    assert [v["user_id"] for v in unread.json()] == [admin]
    assert (await api.get(f"/contacts/{ids[0]}/viewers", headers=as_rep)).status_code == 403
    missing = await api.get(f"/contacts/{uuid.uuid4()}/viewers", headers=auth())
    assert missing.status_code == 404


def _limited(db_url: str, nats_url: str, tmp_dir: Path) -> ContactsSettings:
    return ContactsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        CRM_READ_LIMIT_SALES_REP=LIMIT,
    )


async def test_database_metering_survives_a_restart_and_is_shared_by_replicas(
    db_url: str, nats_url: str, tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads are counted in memory and written in the background: nothing is forgotten."""
    monkeypatch.setattr(DatabaseMeter, "REFRESH_SECONDS", 0.2)
    rep = str(uuid.uuid4())
    as_rep = auth(Role.SALES_REP, rep)
    async with serve_in_process(create_app(_limited(db_url, nats_url, tmp_dir))) as base:
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
            ids = []
            for n in range(5):
                body = {"first_name": f"C{n}", "owner_id": rep}
                ids.append((await api.post("/contacts", json=body, headers=auth())).json()["id"])
            for contact_id in ids[:2]:
                assert (await api.get(f"/contacts/{contact_id}", headers=as_rep)).status_code == 200
    # A restart (the reads were written at shutdown at the latest) keeps the count.
    first = create_app(_limited(db_url, nats_url, tmp_dir))
    second = create_app(_limited(db_url, nats_url, tmp_dir))
    async with serve_in_process(first) as base_a, serve_in_process(second) as base_b:
        async with (
            httpx.AsyncClient(base_url=f"{base_a}/api/v1", timeout=30) as a,
            httpx.AsyncClient(base_url=f"{base_b}/api/v1", timeout=30) as b,
        ):
            assert (await a.get(f"/contacts/{ids[2]}", headers=as_rep)).status_code == 200
            assert (await a.get(f"/contacts/{ids[3]}", headers=as_rep)).status_code == 429

            # Replica b learns of a's reads once a has written them (within a second).
            async def written() -> bool:
                viewers = (await b.get(f"/contacts/{ids[2]}/viewers", headers=auth())).json()
                return rep in [v["user_id"] for v in viewers]

            await wait_until(written, timeout=10, message="replica a's reads in the table")
            await asyncio.sleep(0.3)  # b's own view of the rep is re-read after REFRESH_SECONDS
            assert (await b.get(f"/contacts/{ids[4]}", headers=as_rep)).status_code == 429
            assert (await b.get(f"/contacts/{ids[0]}", headers=as_rep)).status_code == 200
