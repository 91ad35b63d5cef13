"""The campaigns migrations (every head) create exactly the tables the models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

import crm_campaigns
from crm_campaigns.models import Base, load_all_models
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations


def _differences(connection: Connection) -> list[Any]:
    def ours(name: str | None, type_: str, _parent: Any) -> bool:
        # The kernel's tables (outbox, inbox, directory) are checked by the kernel.
        return type_ != "table" or name in Base.metadata.tables

    context = MigrationContext.configure(
        connection, opts={"include_name": ours, "compare_type": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(db_url: str) -> None:
    load_all_models()
    db = Database(db_url)
    try:
        await migrate(db, service_migrations(crm_campaigns.__file__))
        await migrate(db, service_migrations(crm_campaigns.__file__))  # a second start: no-op
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await db.dispose()
    assert differences == []
