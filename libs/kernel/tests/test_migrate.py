"""Migrations at start-up: the kernel's tables, then the service's, once, even from replicas."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, text

from crm_kernel.db import Database
from crm_kernel.migrate import migrate

OpenDb = Callable[..., Awaitable[Database]]

# Two replicas starting at once, as two Database objects in one event loop. Run in a child
# process: if the migration lock deadlocks, the alarm ends it instead of hanging the suite.
CONCURRENT_MIGRATE = """
import asyncio, os, signal, sys
from pathlib import Path
from crm_kernel.db import Database
from crm_kernel.migrate import migrate

def deadlocked(*_):
    print("deadlock: migrate() did not finish", flush=True)
    os._exit(3)

async def main(url, scripts):
    first, second = Database(url), Database(url)
    try:
        await asyncio.gather(migrate(first, scripts), migrate(second, scripts))
    finally:
        await first.dispose()
        await second.dispose()

signal.signal(signal.SIGALRM, deadlocked)
signal.alarm(3)
asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
print("migrated", flush=True)
"""


async def schema(db: Database) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        kernel = (await conn.execute(text("SELECT version_num FROM alembic_version_kernel"))).all()
        service = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    return {"tables": tables, "kernel": kernel, "service": service}


async def test_migrate_creates_kernel_and_service_tables_with_separate_versions(
    open_db: OpenDb,
) -> None:
    db = await open_db()
    found = await schema(db)
    assert {"outbox", "inbox", "directory_users", "directory_team_members", "toy_notes"} <= (
        found["tables"]
    )
    assert found["kernel"] == [("k0001",)]
    assert found["service"] == [("t0001",)]


async def test_second_migrate_changes_nothing(open_db: OpenDb, service_scripts: Path) -> None:
    db = await open_db()
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO toy_notes (id, body) VALUES (1, 'kept')"))
    before = await schema(db)

    statements: list[str] = []
    event.listen(
        db.engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )
    await migrate(db, service_scripts)

    assert await schema(db) == before
    changes = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert changes == []
    async with db.session() as session:
        assert (await session.execute(text("SELECT body FROM toy_notes"))).scalar_one() == "kept"


async def test_concurrent_migrations_of_a_fresh_database_both_succeed(
    db_url: str, service_scripts: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CONCURRENT_MIGRATE, db_url, str(service_scripts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    db = Database(db_url)
    try:
        found = await schema(db)
    finally:
        await db.dispose()
    assert (found["kernel"], found["service"]) == ([("k0001",)], [("t0001",)])
    assert "toy_notes" in found["tables"]


async def test_migrate_without_service_scripts_makes_only_the_kernel_tables(db_url: str) -> None:
    db = Database(db_url)
    try:
        await migrate(db, None)
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await db.dispose()
    assert tables == {
        "alembic_version_kernel",
        "outbox",
        "inbox",
        "directory_users",
        "directory_team_members",
    }
