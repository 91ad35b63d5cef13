"""The gateway's SQLAlchemy base: its own metadata, ids and the current time."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from crm_kernel.ids import new_id


class Base(DeclarativeBase):
    """Base of the gateway's tables (users, teams, sessions); migrated by its own Alembic."""

    # Named constraints, so migrations and models agree on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
        }
    )


def new_uuid() -> str:
    """A time-ordered id as stored in the gateway's String(36) keys."""
    return str(new_id())


def utcnow() -> datetime:
    return datetime.now(UTC)
