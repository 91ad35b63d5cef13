"""Time-ordered identifiers (UUIDv7) for records and events."""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)
_RANDOM_BITS = ~((0xFFFFFFFFFFFF << 80) | (0xF << 76) | (0b11 << 62)) & ((1 << 128) - 1)
_lock = threading.Lock()
_last = 0


def new_id() -> uuid.UUID:
    """A new UUIDv7: unique, and sorting by it sorts by creation time (RFC 9562, 6.2 method 2).

    Ids made within one millisecond count up from the first one's random part instead of
    borrowing the next millisecond (as `uuid6.uuid7` does), so a bulk import making
    thousands a second does not push their embedded time minutes into the future, which
    would sort them after other replicas' later records.
    """
    global _last
    fresh = ((time.time_ns() // 1_000_000) << 80) | _VERSION_AND_VARIANT
    fresh |= secrets.randbits(128) & _RANDOM_BITS
    with _lock:
        if fresh >> 80 <= _last >> 80:  # same (or an earlier) millisecond
            fresh = _next_after(_last)
        _last = fresh
    return uuid.UUID(int=fresh)


def _next_after(last: int) -> int:
    """The smallest valid UUIDv7 above `last` plus a random step (ids stay hard to guess)."""
    step = 1 + secrets.randbits(16)
    random_part = _random_part(last) + step
    if random_part >> 74:  # the 74 random bits ran out: borrow the next millisecond
        return (((last >> 80) + 1) << 80) | _VERSION_AND_VARIANT
    rand_a, rand_b = random_part >> 62, random_part & ((1 << 62) - 1)
    return (last >> 80 << 80) | _VERSION_AND_VARIANT | (rand_a << 64) | rand_b


def _random_part(value: int) -> int:
    """The 74 random bits of a UUIDv7 as one number: rand_a (12) then rand_b (62)."""
    return (((value >> 64) & 0xFFF) << 62) | (value & ((1 << 62) - 1))
