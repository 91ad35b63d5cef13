"""Password hashing with argon2id, off the event loop (each hash costs tens of milliseconds)."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool

# argon2-cffi's defaults are RFC 9106's low-memory recommendation for argon2id.
_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    """The argon2id hash to store for a password."""
    return await run_in_threadpool(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; an unknown user is checked against a dummy hash.

    Doing the same work for unknown e-mails keeps response times from telling
    which addresses have accounts.
    """
    if password_hash is None:
        await run_in_threadpool(_verify, _dummy_hash(), password)
        return False
    return await run_in_threadpool(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))
