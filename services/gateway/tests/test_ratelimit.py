"""The fixed-window limiters: the same contract in memory and in Redis; rates as configured."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from crm_gateway.ratelimit import Limiter, MemoryLimiter, Rate, RedisLimiter
from crm_kernel.testing import wait_until

REDIS_URL = os.environ.get("TEST_REDIS_URL")


@pytest.fixture(
    params=[
        "memory",
        pytest.param(
            "redis", marks=pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL not set")
        ),
    ]
)
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        backend: Limiter = MemoryLimiter()
    else:
        assert REDIS_URL
        backend = RedisLimiter.from_url(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    yield backend
    await backend.close()


async def test_hits_count_up_within_a_window(limiter: Limiter) -> None:
    assert (await limiter.peek("k")).count == 0
    first = await limiter.hit("k", window=60)
    second = await limiter.hit("k", window=60)
    assert (first.count, second.count) == (1, 2)
    assert 0 < second.reset_after <= 60
    assert second.exceeds(2) and not second.exceeds(3)
    assert 1 <= second.retry_after <= 60
    assert (await limiter.peek("k")).count == 2
    # Keys are counted apart.
    assert (await limiter.hit("other", window=60)).count == 1


async def test_peek_does_not_count(limiter: Limiter) -> None:
    await limiter.hit("k", window=60)
    for _ in range(3):
        assert (await limiter.peek("k")).count == 1


async def test_the_count_starts_again_when_the_window_ends(limiter: Limiter) -> None:
    await limiter.hit("k", window=0.2, amount=5)

    async def window_over() -> bool:
        return (await limiter.peek("k")).count == 0

    await wait_until(window_over, timeout=5, message="window end")
    assert (await limiter.hit("k", window=60)).count == 1


async def test_a_later_hit_does_not_extend_the_window(limiter: Limiter) -> None:
    first = await limiter.hit("k", window=30)
    later = await limiter.hit("k", window=3000)
    assert later.reset_after <= first.reset_after


async def test_reset_forgets_the_key(limiter: Limiter) -> None:
    await limiter.hit("k", window=60, amount=3)
    await limiter.reset("k")
    assert (await limiter.peek("k")).count == 0


async def test_acquire_admits_up_to_the_limit_and_does_not_count_refusals(
    limiter: Limiter,
) -> None:
    quotas = [await limiter.acquire("k", limit=3, window=60) for _ in range(5)]
    assert [q.allowed for q in quotas] == [True, True, True, False, False]
    assert [q.remaining for q in quotas] == [2, 1, 0, 0, 0]
    assert quotas[-1].count == 3
    assert 1 <= quotas[-1].retry_after <= 60
    assert (await limiter.peek("k")).count == 3
    assert (await limiter.acquire("other", limit=3, window=60)).allowed


async def test_parallel_acquires_never_admit_more_than_the_limit(limiter: Limiter) -> None:
    quotas = await asyncio.gather(*(limiter.acquire("k", limit=7, window=60) for _ in range(40)))
    assert sum(q.allowed for q in quotas) == 7


async def test_acquire_admits_again_when_the_window_ends(limiter: Limiter) -> None:
    assert (await limiter.acquire("k", limit=1, window=0.2)).allowed
    assert not (await limiter.acquire("k", limit=1, window=0.2)).allowed

    async def admitted() -> bool:
        return (await limiter.acquire("k", limit=1, window=60)).allowed

    await wait_until(admitted, timeout=5, message="a new window")


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [
        ("600/minute", 600, 60),
        ("20/hour", 20, 3600),
        ("5/30s", 5, 30),
        ("100/1m", 100, 60),
        ("7/seconds", 7, 1),
        ("1000/day", 1000, 86400),
        ("0", 0, 60),
    ],
)
def test_rates_read_as_requests_per_period(text: str, limit: int, window: float) -> None:
    assert Rate.parse(text) == Rate(limit, window)


@pytest.mark.parametrize("text", ["", "ten/minute", "5", "5/", "5/fortnight", "5/0s", "-1/minute"])
def test_malformed_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(text)
