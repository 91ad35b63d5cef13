"""Fixed-window counters for limits: in-process for one machine, Redis for replicas."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True)
class Usage:
    """How much of a key's window is used, and when the window ends."""

    count: int
    reset_after: float  # seconds until the count starts again from zero

    def exceeds(self, limit: int) -> bool:
        """Whether `limit` hits are already used up in this window."""
        return self.count >= limit

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, as a `Retry-After` header says it (at least 1)."""
        return max(1, math.ceil(self.reset_after))


class Limiter(Protocol):
    """Counts hits per key in fixed windows; the first hit of a key opens its window."""

    async def hit(self, key: str, *, window: float, amount: int = 1) -> Usage:
        """Add `amount` to the key's count (opening a window if none is open)."""
        ...

    async def peek(self, key: str) -> Usage:
        """The key's count without adding to it (0 when no window is open)."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the key's window."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """In-process counters: right for one replica (`REDIS_URL` unset), wrong for several."""

    def __init__(self, *, max_keys: int = 100_000):
        self._windows: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, *, window: float, amount: int = 1) -> Usage:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            if len(self._windows) >= self._max_keys:
                self._sweep(now)
            count, ends = 0, now + window
        count += amount
        self._windows[key] = (count, ends)
        return Usage(count, ends - now)

    async def peek(self, key: str) -> Usage:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        return Usage(count, ends - now) if ends > now else Usage(0, 0.0)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def close(self) -> None:
        self._windows.clear()

    def _sweep(self, now: float) -> None:
        """Drop closed windows; if all are open, drop everything rather than grow without bound."""
        self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        if len(self._windows) >= self._max_keys:
            self._windows.clear()


# INCRBY and the expiry of a new window in one step: no window is ever left
# without an expiry, whatever happens between two commands.
_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

_PEEK = """
local count = redis.call('GET', KEYS[1])
if not count then return {0, 0} end
return {tonumber(count), redis.call('PTTL', KEYS[1])}
"""


class RedisLimiter:
    """Counters shared by every replica, in Redis (`REDIS_URL`)."""

    def __init__(self, redis: Redis, *, prefix: str = "crm:ratelimit:"):
        self._redis = redis
        self._prefix = prefix
        self._hit = redis.register_script(_HIT)
        self._peek = redis.register_script(_PEEK)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "crm:ratelimit:") -> RedisLimiter:
        # Short timeouts: a limiter that hangs would hang every request it guards.
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        return cls(client, prefix=prefix)

    async def hit(self, key: str, *, window: float, amount: int = 1) -> Usage:
        count, ttl = await self._hit(
            keys=[self._prefix + key], args=[max(1, int(window * 1000)), amount]
        )
        return Usage(int(count), max(0, int(ttl)) / 1000)

    async def peek(self, key: str) -> Usage:
        count, ttl = await self._peek(keys=[self._prefix + key])
        return Usage(int(count), max(0, int(ttl)) / 1000)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()
