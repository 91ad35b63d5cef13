"""Ordered provider fail-over and a per-provider rate limit, around any channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from crm_notifications.channels.errors import TransientError

M = TypeVar("M", contravariant=True)


class Channel(Protocol[M]):
    async def send(self, message: M) -> str: ...


class RateLimited(Generic[M]):
    """At most `per_second` messages a second through `inner` (per process), spaced evenly."""

    def __init__(self, inner: Channel[M], per_second: float):
        self.inner = inner
        self.interval = 1.0 / per_second
        self._next_at = 0.0
        self._lock = asyncio.Lock()

    async def send(self, message: M) -> str:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next_at)
            self._next_at = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)
        return await self.inner.send(message)

    async def close(self) -> None:
        await close_channel(self.inner)


class Failover(Generic[M]):
    """Tries the providers in order; the next one only when the previous failed transiently.

    A permanent error (the recipient does not exist) is about the message, not
    the provider, so it is not tried elsewhere.
    """

    def __init__(self, channels: Sequence[Channel[M]]):
        self.channels = list(channels)

    async def send(self, message: M) -> str:
        errors: list[str] = []
        for channel in self.channels:
            try:
                return await channel.send(message)
            except TransientError as exc:
                errors.append(str(exc))
        raise TransientError("; ".join(errors))

    async def close(self) -> None:
        for channel in self.channels:
            await close_channel(channel)


async def close_channel(channel: Any) -> None:
    close = getattr(channel, "close", None)
    if close is not None:
        await close()


def unwrap(channel: Any) -> list[Any]:
    """The providers inside fail-over and rate-limit wrappers."""
    if isinstance(channel, Failover):
        return [p for c in channel.channels for p in unwrap(c)]
    if isinstance(channel, RateLimited):
        return unwrap(channel.inner)
    return [channel]
