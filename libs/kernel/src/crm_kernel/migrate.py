"""Alembic migrations applied at start-up: the kernel's tables, then the service's own."""

from __future__ import annotations

import asyncio
import fcntl
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import async_engine_from_config

from crm_kernel.db import Database

KERNEL_MIGRATIONS = Path(__file__).parent / "migrations"


def service_migrations(package_file: str) -> Path:
    """A service's `migrations/` folder, inside the installed package or beside `src/`."""
    package_dir = Path(package_file).resolve().parent
    inside = package_dir / "migrations"
    return inside if inside.is_dir() else package_dir.parents[1] / "migrations"


def _config(script_location: Path, version_table: str, connection: Connection | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = connection
    cfg.attributes["version_table"] = version_table
    return cfg


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive lock on a file, waited for off the event loop (other tasks keep running)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:  # noqa: ASYNC230 - opening a lock file does not block
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade_all(connection: Connection, scripts: Sequence[tuple[Path, str]]) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together: one migrates, the others wait and find it done.
        key = zlib.crc32(str(connection.engine.url.database).encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    for location, version_table in scripts:
        # "heads": independent branches of a service's history (work landing in parallel)
        # are all applied; a merge revision joins them when convenient.
        command.upgrade(_config(location, version_table, connection), "heads")


async def migrate(db: Database, service_scripts: Path | None) -> None:
    """Bring the database to the newest schema; safe when several replicas start at once.

    `service_scripts` None migrates only the kernel's tables.
    """
    scripts = [(KERNEL_MIGRATIONS, "alembic_version_kernel")]
    if service_scripts is not None:
        scripts.append((service_scripts, "alembic_version"))

    async def upgrade() -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade_all, scripts)

    if db.is_sqlite:
        database = make_url(db.url).database or "memory"
        async with _file_lock(Path(f"{database}.migrate.lock")):
            await upgrade()
    else:
        await upgrade()


def run_env(target_metadata: MetaData | None) -> None:
    """The body of every `migrations/env.py`: online, on the given or configured connection."""
    config = context.config
    version_table = config.attributes.get("version_table", "alembic_version")
    connection: Connection | None = config.attributes.get("connection")

    def run(conn: Connection) -> None:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=conn.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    if connection is not None:
        run(connection)
        return

    # Run from the alembic CLI (e.g. `alembic revision --autogenerate`): the URL
    # comes from alembic.ini's sqlalchemy.url or the environment.
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (alembic -x or alembic.ini) to a database URL")

    async def run_async() -> None:
        engine = async_engine_from_config(
            {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
        )
        async with engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run_async())
