"""The contacts migrations create exactly the tables its models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

import crm_contacts
from crm_contacts.activities import models as _activity_models  # noqa: F401 - registers tables
from crm_contacts.audit import models as _audit_models  # noqa: F401 - registers tables
from crm_contacts.companies import models as _company_models  # noqa: F401 - registers tables
from crm_contacts.contacts import models as _contact_models  # noqa: F401 - registers tables
from crm_contacts.custom_fields import models as _field_models  # noqa: F401 - registers tables
from crm_contacts.metering import models as _metering_models  # noqa: F401 - registers tables
from crm_contacts.models import Base
from crm_contacts.requests import models as _request_models  # noqa: F401 - registers tables
from crm_contacts.tasks import models as _task_models  # noqa: F401 - registers tables
from crm_contacts.timeline import models as _timeline_models  # noqa: F401 - registers tables
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations


def _differences(connection: Connection) -> list[Any]:
    def ours(name: str | None, type_: str, _parent: Any) -> bool:
        # The kernel's tables (outbox, inbox, directory) are checked by the kernel;
        # the search objects are per dialect (migration c0004), checked by the search tests.
        if type_ == "column" and name == "search_vector":
            return False
        if type_ == "index" and (name or "").startswith("ix_search_"):
            return False
        return type_ != "table" or name in Base.metadata.tables

    context = MigrationContext.configure(
        connection, opts={"include_name": ours, "compare_type": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        await migrate(db, service_migrations(crm_contacts.__file__))
        await migrate(db, service_migrations(crm_contacts.__file__))  # a second start: no-op
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await db.dispose()
    assert differences == []
