"""Where idempotency keys live: Redis when configured, otherwise the gateway's database.

Both hold across replicas (replicas share Redis, or the database). A key is
first claimed with an in-progress marker that expires after `lock_ttl` (so a
replica that dies mid-request does not hold the key for a day), then holds
the stored answer for `ttl`.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import orjson
from redis.asyncio import Redis
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from crm_gateway.idempotency.models import IdempotencyRecord
from crm_gateway.orm import utcnow
from crm_kernel.db import Database


@dataclass(frozen=True)
class Answer:
    """A stored response: what is replayed."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key.

    Exactly one of: `owner` (the key is ours now: run the request), `answer`
    (replay it), `in_progress` (someone else is running it) or `mismatch`
    (the key was used for a different request).
    """

    owner: str | None = None
    answer: Answer | None = None
    in_progress: bool = False
    mismatch: bool = False


class IdempotencyStore(Protocol):
    async def claim(self, caller: str, key: str, fingerprint: str) -> Claim: ...

    async def complete(self, caller: str, key: str, owner: str, answer: Answer) -> None:
        """Store the answer for `ttl` (only if `owner` still holds the key)."""
        ...

    async def release(self, caller: str, key: str, owner: str) -> None:
        """Give the key up without an answer, so a retry runs the request again."""
        ...

    async def close(self) -> None: ...


def _owner() -> str:
    return secrets.token_hex(16)


# Store the answer only if the in-progress marker is still ours.
_COMPLETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisIdempotencyStore:
    """Keys in Redis: the in-progress marker is a `SET NX PX`, the answer replaces it."""

    def __init__(self, redis: Redis, *, prefix: str, ttl: float, lock_ttl: float):
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = int(ttl * 1000)
        self._lock_ms = int(lock_ttl * 1000)
        self._complete = redis.register_script(_COMPLETE)
        self._release = redis.register_script(_RELEASE)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str, ttl: float, lock_ttl: float
    ) -> RedisIdempotencyStore:
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        return cls(client, prefix=prefix, ttl=ttl, lock_ttl=lock_ttl)

    def _key(self, caller: str, key: str) -> str:
        return f"{self._prefix}{caller}:{key}"

    async def _get(self, name: str) -> bytes | None:
        value = await self._redis.get(name)
        return value.encode() if isinstance(value, str) else value

    @staticmethod
    def _marker(owner: str, fingerprint: str) -> bytes:
        return f"pending:{owner}:{fingerprint}".encode()

    async def claim(self, caller: str, key: str, fingerprint: str) -> Claim:
        name = self._key(caller, key)
        for _ in range(3):  # the key may expire between SET NX and GET
            owner = _owner()
            if await self._redis.set(
                name, self._marker(owner, fingerprint), nx=True, px=self._lock_ms
            ):
                return Claim(owner=owner)
            stored = await self._get(name)
            if stored is None:
                continue
            if stored.startswith(b"pending:"):
                other = stored.decode().rsplit(":", 1)[-1]
                return Claim(mismatch=True) if other != fingerprint else Claim(in_progress=True)
            record = orjson.loads(stored)
            if record["fingerprint"] != fingerprint:
                return Claim(mismatch=True)
            return Claim(
                answer=Answer(
                    status=record["status"],
                    headers=[(k, v) for k, v in record["headers"]],
                    body=base64.b64decode(record["body"]),
                )
            )
        return Claim(in_progress=True)

    async def complete(self, caller: str, key: str, owner: str, answer: Answer) -> None:
        name = self._key(caller, key)
        stored = await self._get(name)
        if stored is None or not stored.startswith(b"pending:"):
            return
        fingerprint = stored.decode().rsplit(":", 1)[-1]
        record = orjson.dumps(
            {
                "fingerprint": fingerprint,
                "status": answer.status,
                "headers": answer.headers,
                "body": base64.b64encode(answer.body).decode(),
            }
        )
        await self._complete(
            keys=[name], args=[self._marker(owner, fingerprint), record, self._ttl_ms]
        )

    async def release(self, caller: str, key: str, owner: str) -> None:
        name = self._key(caller, key)
        stored = await self._get(name)
        if stored is not None and stored.startswith(f"pending:{owner}:".encode()):
            await self._release(keys=[name], args=[stored])

    async def close(self) -> None:
        await self._redis.aclose()


class DatabaseIdempotencyStore:
    """Keys in the gateway's database (`idempotency_keys`): the primary key makes a claim unique."""

    def __init__(self, db: Database, *, ttl: float, lock_ttl: float, sweep_every: float = 600):
        self._db = db
        self._ttl = timedelta(seconds=ttl)
        self._lock_ttl = timedelta(seconds=lock_ttl)
        self._sweep_every = sweep_every
        self._next_sweep = 0.0

    async def _sweep(self) -> None:
        """Delete expired records now and then (no background task needed)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_every
        async with self._db.transaction() as session:
            await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
            )

    async def claim(self, caller: str, key: str, fingerprint: str) -> Claim:
        await self._sweep()
        for _ in range(3):
            now = utcnow()
            owner = _owner()
            try:
                async with self._db.transaction() as session:
                    session.add(
                        IdempotencyRecord(
                            caller=caller,
                            key=key,
                            fingerprint=fingerprint,
                            owner=owner,
                            created_at=now,
                            expires_at=now + self._lock_ttl,
                        )
                    )
                return Claim(owner=owner)
            except IntegrityError:
                pass
            async with self._db.session() as session:
                record = await session.get(IdempotencyRecord, (caller, key))
            if record is None:
                continue
            if record.expires_at <= now:
                # An expired answer, or the marker of a replica that died: take it over.
                async with self._db.transaction() as session:
                    await session.execute(
                        delete(IdempotencyRecord).where(
                            IdempotencyRecord.caller == caller,
                            IdempotencyRecord.key == key,
                            IdempotencyRecord.owner == record.owner,
                        )
                    )
                continue
            if record.fingerprint != fingerprint:
                return Claim(mismatch=True)
            if record.status is None:
                return Claim(in_progress=True)
            return Claim(
                answer=Answer(
                    status=record.status,
                    headers=[(k, v) for k, v in record.headers or []],
                    body=record.body or b"",
                )
            )
        return Claim(in_progress=True)

    async def complete(self, caller: str, key: str, owner: str, answer: Answer) -> None:
        now = utcnow()
        async with self._db.transaction() as session:
            await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.caller == caller,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.owner == owner,
                )
                .values(
                    status=answer.status,
                    headers=[list(h) for h in answer.headers],
                    body=answer.body,
                    expires_at=now + self._ttl,
                )
            )

    async def release(self, caller: str, key: str, owner: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.caller == caller,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.owner == owner,
                    IdempotencyRecord.status.is_(None),
                )
            )

    async def close(self) -> None:
        return None
