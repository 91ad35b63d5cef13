"""Read metering: distinct contacts per user per hour, the 429 guard, one alert, who viewed."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crm_contacts.main import create_app
from crm_contacts.settings import ContactsSettings
from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.testing import TEST_JWT_SECRET, serve_in_process

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
