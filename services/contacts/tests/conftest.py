"""Fixtures of the contacts service's tests: a running service, the bus and its events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crm_contacts.main import create_app
from crm_contacts.settings import ContactsSettings
from crm_contacts.testing import Events, stream_reader
from crm_kernel.bus import Bus
from crm_kernel.testing import TEST_JWT_SECRET, serve_in_process


@pytest.fixture
async def api(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The contacts service on this test's database and NATS, and a client of its API."""
    settings = ContactsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as client:
            yield client


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


@pytest.fixture
def events(nats_url: str) -> Events:
    """Every envelope the service published so far (optionally of some types), in order."""
    return stream_reader(nats_url)
