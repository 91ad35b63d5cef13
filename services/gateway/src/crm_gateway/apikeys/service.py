"""API key use cases: create (the key shown once), list, read, revoke, look up by key."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from crm_gateway.apikeys.models import ApiKey
from crm_gateway.apikeys.schemas import ApiKeyCreate
from crm_gateway.orm import utcnow
from crm_gateway.users.models import User
from crm_kernel.db import Database
from crm_kernel.pagination import paginate, parse_sort
from crm_kernel.problems import NotFound, Unprocessable

# Recognisable in logs and by secret scanners; the rest is 256 random bits.
KEY_PREFIX = "crm_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_api_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX)


@dataclass(frozen=True)
class ActingKey:
    """A live key and the user it acts as, as the gateway needs it for each request."""

    id: str
    scopes: frozenset[str]
    user_id: str
    role: str
    team_ids: tuple[str, ...]
    email: str


async def create_key(db: Database, *, data: ApiKeyCreate, actor: str) -> tuple[ApiKey, str]:
    """A new key for an active user; returns the record and the key (never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    async with db.transaction() as session:
        user = await session.get(User, data.user_id)
        if user is None or not user.is_active:
            raise Unprocessable(
                "The key must act as an existing, active user.",
                errors=[{"field": "user_id", "location": "body", "message": "no such active user"}],
            )
        record = ApiKey(
            name=data.name,
            prefix=key[: len(KEY_PREFIX) + 6],
            key_hash=key_hash(key),
            scopes=data.scopes,
            user_id=data.user_id,
            created_by=actor,
            created_at=utcnow(),
        )
        session.add(record)
    return record, key


SORTABLE = {"created_at": ApiKey.created_at, "name": ApiKey.name}


async def list_keys(
    db: Database, *, limit: int, cursor: str | None, user_id: str | None, revoked: bool | None
) -> tuple[list[ApiKey], str | None]:
    """Keys, newest first; filter by acting user and by revocation."""
    query = select(ApiKey)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    if revoked is not None:
        query = query.where(
            ApiKey.revoked_at.is_not(None) if revoked else ApiKey.revoked_at.is_(None)
        )
    keys = parse_sort(None, SORTABLE, "-created_at", ApiKey.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return [row[0] for row in rows], next_cursor


async def get_key(db: Database, *, key_id: str) -> ApiKey:
    async with db.session() as session:
        record = await session.get(ApiKey, key_id)
    if record is None:
        raise NotFound("There is no such API key.")
    return record


async def revoke_key(db: Database, *, key_id: str) -> None:
    """Revoke a key (again: no change)."""
    async with db.transaction() as session:
        record = await session.get(ApiKey, key_id)
        if record is None:
            raise NotFound("There is no such API key.")
        if record.revoked_at is None:
            record.revoked_at = utcnow()


async def acting_key(db: Database, *, key: str) -> ActingKey | None:
    """The live key with this value and its active user (None: unknown, revoked, user inactive)."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(ApiKey, User)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.key_hash == key_hash(key), ApiKey.revoked_at.is_(None))
            )
        ).first()
    if row is None:
        return None
    record, user = row
    if not user.is_active:
        return None
    return ActingKey(
        id=record.id,
        scopes=frozenset(record.scopes),
        user_id=user.id,
        role=user.role,
        team_ids=tuple(user.team_ids),
        email=user.email,
    )


async def touch(db: Database, *, key_id: str, at: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
