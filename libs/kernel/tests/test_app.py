"""A service built on the kernel's frame: lifespan, health, relay and directory, served for real."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import select, text

import crm_kernel.app
from crm_kernel.app import DatabaseDep, Runtime, create_service_app
from crm_kernel.auth import CurrentUser
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.contracts.gateway import UserCreated
from crm_kernel.db import Database
from crm_kernel.outbox import add_event
from crm_kernel.settings import ServiceSettings
from crm_kernel.tables import directory_users
from crm_kernel.testing import (
    TEST_JWT_SECRET,
    NatsServer,
    issue_token,
    serve_in_process,
    wait_until,
)


class ToySettings(ServiceSettings):
    service_name: ClassVar[str] = "toy"


def toy_router() -> APIRouter:
    router = APIRouter()

    @router.post("/notes", status_code=201)
    async def create_note(db: DatabaseDep, principal: CurrentUser) -> dict[str, str]:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO toy_notes (id, body) VALUES (1, 'hello')"))
            await add_event(
                session,
                ContactCreated(
                    id="c1",
                    first_name="Note",
                    owner_id=principal.user_id,
                    version=1,
                    created_at="2026-01-01T00:00:00Z",
                    updated_at="2026-01-01T00:00:00Z",
                ),
                actor=principal.user_id,
            )
        return {"id": "1"}

    return router


@pytest.fixture
async def api(
    db_url: str, nats_url: str, tmp_dir: Path, service_scripts: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ToySettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    app = create_service_app(
        settings, title="toy", migrations=service_scripts, routers=[toy_router()]
    )
    async with serve_in_process(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            yield client


async def test_service_is_ready_with_database_and_bus_and_not_without_the_bus(
    api: httpx.AsyncClient, nats_server: NatsServer
) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": True, "bus": True}}

    nats_server.stop()
    down = await wait_until(lambda: _readyz(api, 503), message="not ready while NATS is down")
    assert down["checks"] == {"database": True, "bus": False}
    assert (await api.get("/healthz")).status_code == 200
    nats_server.start()
    await wait_until(lambda: _readyz(api, 200), message="ready again")


async def _readyz(api: httpx.AsyncClient, status: int) -> dict[str, object] | None:
    response = await api.get("/readyz")
    return response.json() if response.status_code == status else None


async def test_service_relays_its_events_and_keeps_the_directory(
    api: httpx.AsyncClient, db_url: str, nats_url: str
) -> None:
    headers = {"Authorization": f"Bearer {issue_token('sales_rep', user_id='u1')}"}
    created = await api.post("/api/v1/notes", headers=headers)
    assert created.status_code == 201, created.text

    bus = await Bus.connect(nats_url, name="observer")
    db = Database(db_url)
    try:
        await wait_until(
            lambda: _messages(bus, "CRM_CONTACTS", 1), message="the event relayed by the service"
        )
        event = UserCreated(
            id="u9",
            email="u9@example.com",
            full_name="Nine",
            role="sales_rep",
            team_ids=["t1"],
            is_active=True,
            version=1,
        )
        await bus.publish(event.envelope())

        async def stored_user() -> list[str]:
            async with db.session() as session:
                rows = await session.execute(select(directory_users.c.full_name))
                return list(rows.scalars())

        assert await wait_until(stored_user, message="the directory updated") == ["Nine"]
    finally:
        await bus.close()
        await db.dispose()


async def _messages(bus: Bus, stream: str, n: int) -> bool:
    return (await bus.js.stream_info(stream)).state.messages == n


async def test_extra_readiness_checks_and_shutdown_hooks_run(
    db_url: str, nats_url: str, tmp_dir: Path, service_scripts: Path
) -> None:
    upstreams = {"deals": "ok"}
    stopped: list[tuple[str, bool]] = []

    async def check_upstreams(runtime: Runtime) -> dict[str, str]:
        return dict(upstreams)

    async def say_goodbye(runtime: Runtime) -> None:
        # Runs first at shutdown: the bus is still there to use.
        stopped.append((runtime.settings.service_name, runtime.bus.nc.is_connected))

    settings = ToySettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    app = create_service_app(
        settings,
        title="toy",
        migrations=service_scripts,
        readiness={"upstreams": check_upstreams},
        on_shutdown=[say_goodbye],
    )
    async with serve_in_process(app) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        ready = await api.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["upstreams"] == {"deals": "ok"}

        upstreams["deals"] = "connection refused"
        unready = await api.get("/readyz")
        assert unready.status_code == 503
        assert unready.json()["status"] == "unavailable"
        assert unready.json()["upstreams"] == {"deals": "connection refused"}
        assert stopped == []

    assert stopped == [("toy", True)]


async def test_a_task_that_ignores_cancellation_cannot_hang_shutdown(
    db_url: str,
    nats_url: str,
    tmp_dir: Path,
    service_scripts: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(crm_kernel.app, "TASK_STOP_SECONDS", 0.5)
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    async def start_stubborn(runtime: Runtime) -> None:
        runtime.spawn(stubborn(), "stubborn-loop")

    settings = ToySettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    app = create_service_app(
        settings, title="toy", migrations=service_scripts, on_startup=[start_stubborn]
    )
    # The server stopping at all is the point: before, shutdown waited for the task for ever.
    async with serve_in_process(app) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        assert (await api.get("/healthz")).status_code == 200
    released.set()

    stuck = [r for r in caplog.records if "did not stop" in r.getMessage()]
    assert len(stuck) == 1
    assert "stubborn-loop" in stuck[0].getMessage()
    assert "stubborn" in stuck[0].getMessage().split("cancellation:", 1)[1]
