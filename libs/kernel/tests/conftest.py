"""Fixtures of the kernel's own tests: a migrated toy-service database, bus connections, tasks."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData

from crm_kernel.bus import Bus
from crm_kernel.db import Database
from crm_kernel.migrate import KERNEL_MIGRATIONS, migrate

OpenDb = Callable[..., Awaitable[Database]]
ConnectBus = Callable[..., Awaitable[Bus]]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


# The toy service's one revision: a table of its own beside the kernel's.
TOY_REVISION = '''"""toy notes

Revision ID: t0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "toy_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("toy_notes")
'''


def write_service_scripts(folder: Path) -> Path:
    """A toy service's Alembic folder: env.py on the kernel's run_env, one revision."""
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "env.py").write_text("from crm_kernel.migrate import run_env\n\nrun_env(None)\n")
    shutil.copy(KERNEL_MIGRATIONS / "script.py.mako", folder / "script.py.mako")
    (folder / "versions" / "t0001_toy_notes.py").write_text(TOY_REVISION)
    return folder


@pytest.fixture
async def cleanup() -> AsyncIterator[contextlib.AsyncExitStack]:
    """Closes what a test opened (databases), in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack


@pytest.fixture
def service_scripts(tmp_dir: Path) -> Path:
    return write_service_scripts(tmp_dir / "toy_migrations")


@pytest.fixture
def open_db(db_url: str, service_scripts: Path, cleanup: contextlib.AsyncExitStack) -> OpenDb:
    """Open the test database (another replica's engine on each call), migrated, with tables."""

    async def open_(metadata: MetaData | None = None) -> Database:
        db = Database(db_url)
        cleanup.push_async_callback(db.dispose)
        await migrate(db, service_scripts)
        if metadata is not None:
            async with db.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        return db

    return open_


@pytest.fixture
async def connect_bus(nats_url: str) -> AsyncIterator[ConnectBus]:
    """A new NATS connection (one per replica) with every stream ensured; closed before the
    server stops."""
    async with contextlib.AsyncExitStack() as stack:

        async def connect(name: str = "crm-test") -> Bus:
            bus = await Bus.connect(nats_url, name=name)
            stack.push_async_callback(bus.close)
            await bus.ensure_streams()
            return bus

        yield connect


@pytest.fixture
async def bus(connect_bus: ConnectBus) -> Bus:
    return await connect_bus()


async def _stop(task: asyncio.Task[Any]) -> None:
    crashed = task.done() and not task.cancelled() and task.exception() is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if crashed:
        raise AssertionError(f"background task {task.get_name()} crashed") from task.exception()


@pytest.fixture
async def spawn(
    cleanup: contextlib.AsyncExitStack, connect_bus: ConnectBus
) -> AsyncIterator[Spawn]:
    """Run a background loop (relay, consumer) until the test ends; a crash fails the test.

    Set up after the databases and buses it uses, so its tasks stop before they close.
    """
    async with contextlib.AsyncExitStack() as stack:

        def spawn_(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
            task = asyncio.create_task(coro)
            stack.push_async_callback(_stop, task)
            return task

        yield spawn_
