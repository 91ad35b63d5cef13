"""Tables every service database has: outbox, inbox and the user directory."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

from crm_kernel.db import UtcDateTime

metadata = MetaData()

# Integer on SQLite so the key is the rowid alias and autoincrements.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "outbox",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("subject", String(255), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime()),
)
Index(
    "ix_outbox_pending",
    outbox.c.id,
    postgresql_where=text("published_at IS NULL"),
    sqlite_where=text("published_at IS NULL"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(120), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("processed_at", UtcDateTime(), nullable=False),
)

# The directory: who the users are and which teams they belong to, kept from
# the gateway's events, so a service can decide visibility without calling it.
directory_users = Table(
    "directory_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
)

directory_team_members = Table(
    "directory_team_members",
    metadata,
    Column("team_id", String(36), primary_key=True),
    Column("user_id", String(36), primary_key=True, index=True),
)
