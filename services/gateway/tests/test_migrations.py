"""The gateway's migrations create exactly the tables its models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

import crm_gateway
from crm_gateway.apikeys import models as _api_key_models  # noqa: F401 - registers tables
from crm_gateway.audit import models as _audit_models  # noqa: F401 - registers tables
from crm_gateway.auth import models as _auth_models  # noqa: F401 - registers tables
from crm_gateway.idempotency import models as _idempotency_models  # noqa: F401 - registers tables
from crm_gateway.orm import Base
from crm_gateway.teams import models as _team_models  # noqa: F401 - registers tables
from crm_gateway.users import models as _user_models  # noqa: F401 - registers tables
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
    db = Database(db_url)
    try:
        await migrate(db, service_migrations(crm_gateway.__file__))
        await migrate(db, service_migrations(crm_gateway.__file__))  # a second start: no-op
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await db.dispose()
    assert differences == []
