"""Fixed-window counters for limits: in-process for one machine, Redis for replicas."""

from __future__ import annotations

import math
import re
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


@dataclass(frozen=True)
class Quota:
    """The answer to `acquire`: whether the request may go, and what is left of the budget."""

    allowed: bool
    limit: int
    count: int  # requests admitted in this window, this one included if allowed
    reset_after: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def reset(self) -> int:
        """Whole seconds until the window ends, as `RateLimit-Reset` says it."""
        return max(0, math.ceil(self.reset_after))

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_after))


_PERIODS = {"s": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_PERIODS["d"] = _PERIODS["day"] = 86400
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(\d+(?:\.\d+)?)?\s*([a-z]*)\s*)?$")


@dataclass(frozen=True)
class Rate:
    """A budget: `limit` requests per `window` seconds (limit 0: unlimited)."""

    limit: int
    window: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`600/minute`, `20/hour`, `5/30s`, `100/1m`; a bare `0` switches the limit off."""
        match = _RATE.match(text.lower())
        if match is None:
            raise ValueError(f"not a rate: {text!r} (say e.g. 600/minute, 20/hour, 5/30s)")
        count, number, unit = match.groups()
        if unit is None and number is None:
            if int(count) != 0:
                raise ValueError(f"a rate needs a period: {text!r} (e.g. {count}/minute)")
            return cls(0, 60.0)
        if number is None and not unit:
            raise ValueError(f"a rate needs a period: {text!r} (e.g. {count}/minute)")
        if unit and unit.rstrip("s") in _PERIODS:
            unit = unit.rstrip("s")
        if unit not in _PERIODS and unit != "":
            raise ValueError(f"unknown period in rate {text!r}")
        window = float(number or 1) * _PERIODS[unit or "s"]
        if window <= 0:
            raise ValueError(f"the period of rate {text!r} must be positive")
        return cls(int(count), window)

    @property
    def unlimited(self) -> bool:
        return self.limit == 0


class Limiter(Protocol):
    """Counts hits per key in fixed windows; the first hit of a key opens its window."""

    async def acquire(self, key: str, *, limit: int, window: float) -> Quota:
        """Count one request if the key has fewer than `limit` in its window; in one atomic step.

        A refused request is not counted, so a caller hammering past the limit
        does not push its own window's count further.
        """
        ...

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

    def _open(self, key: str, window: float, now: float) -> tuple[int, float]:
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            if len(self._windows) >= self._max_keys:
                self._sweep(now)
            count, ends = 0, now + window
        return count, ends

    # No await between reading and writing a window: on one event loop each
    # call is atomic, so concurrent requests cannot both take the last slot.
    async def acquire(self, key: str, *, limit: int, window: float) -> Quota:
        now = time.monotonic()
        count, ends = self._open(key, window, now)
        if count >= limit:
            self._windows[key] = (count, ends)
            return Quota(False, limit, count, ends - now)
        self._windows[key] = (count + 1, ends)
        return Quota(True, limit, count + 1, ends - now)

    async def hit(self, key: str, *, window: float, amount: int = 1) -> Usage:
        now = time.monotonic()
        count, ends = self._open(key, window, now)
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

# Check and count in one step (a script runs atomically in Redis): of two
# replicas racing for the last slot, exactly one gets it.
_ACQUIRE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[2])
local ttl
if count >= limit then
  ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    ttl = tonumber(ARGV[1])
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return {0, count, ttl}
end
count = redis.call('INCR', KEYS[1])
ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, count, ttl}
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
        self._acquire = redis.register_script(_ACQUIRE)

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

    async def acquire(self, key: str, *, limit: int, window: float) -> Quota:
        allowed, count, ttl = await self._acquire(
            keys=[self._prefix + key], args=[max(1, int(window * 1000)), limit]
        )
        return Quota(bool(allowed), limit, int(count), max(0, int(ttl)) / 1000)

    async def peek(self, key: str) -> Usage:
        count, ttl = await self._peek(keys=[self._prefix + key])
        return Usage(int(count), max(0, int(ttl)) / 1000)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()
