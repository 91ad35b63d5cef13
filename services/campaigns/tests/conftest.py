"""Fixtures of the campaigns tests: the service over real HTTP, the bus, its database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from crm_campaigns.main import create_app
from crm_campaigns.testing import User, new_user, settings_for
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.gateway import UserCreated
from crm_kernel.db import Database
from crm_kernel.tables import directory_users
from crm_kernel.testing import serve_in_process, wait_until


@pytest.fixture
async def api(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(db_url, nats_url, tmp_dir))
    async with serve_in_process(app) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as client:
            yield client


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """The service's database, for what only the database can tell."""
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def marketer() -> User:
    return new_user(Role.MARKETER)


@pytest.fixture
def add_users(bus: Bus, db: Database) -> Callable[..., Awaitable[None]]:
    """Publish users as the gateway would, and wait until the service's directory has them."""

    async def add(*users: User, names: dict[str, str] | None = None) -> None:
        for user in users:
            event = UserCreated(
                id=user.id,
                email=f"{user.id[:8]}@crm.example",
                full_name=(names or {}).get(user.id, f"User {user.id[:8]}"),
                role=user.role.value,
                team_ids=list(user.team_ids),
                is_active=True,
                version=1,
            )
            await bus.publish(event.envelope())
        ids = [u.id for u in users]

        async def applied() -> bool:
            async with db.session() as session:
                found = await session.scalar(
                    select(func.count())
                    .select_from(directory_users)
                    .where(directory_users.c.id.in_(ids))
                )
            return found == len(ids)

        await wait_until(applied, timeout=30, message="users in the directory")

    return add
