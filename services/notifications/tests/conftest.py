"""Fixtures of the notifications tests: the bus, the service's database, users in the directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import func, select

from crm_kernel.bus import Bus
from crm_kernel.contracts.gateway import UserCreated
from crm_kernel.db import Database
from crm_kernel.tables import directory_users
from crm_kernel.testing import wait_until


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def add_users(bus: Bus, db: Database) -> Callable[..., Awaitable[None]]:
    """Publish users as the gateway would; wait until the service's directory has them."""

    async def add(*users: tuple[str, str, bool]) -> None:
        for user_id, role, active in users:
            event = UserCreated(
                id=user_id,
                email=f"{user_id}@example.com",
                full_name=f"User {user_id[:8]}",
                role=role,
                team_ids=[],
                is_active=active,
                version=1,
            )
            await bus.publish(event.envelope())

        async def stored() -> bool:
            async with db.session() as session:
                count = await session.scalar(select(func.count()).select_from(directory_users))
            return (count or 0) >= len(users)

        await wait_until(stored, timeout=20, message="users in the directory")

    return add
