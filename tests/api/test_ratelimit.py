"""The rate limiter's shared bucket, spent a few tokens per round trip, on the real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from api.ratelimit import RateLimiter
from shared.settings import Settings

Limiters = Callable[[float, int], RateLimiter]


@pytest.fixture
async def limiters(infra: dict[str, str]) -> AsyncIterator[Limiters]:
    """Limiters ("replicas") sharing one Redis namespace of their own."""
    redis = Redis.from_url(infra["redis_url"])
    namespace = f"rl-test-{uuid.uuid4().hex[:8]}:"

    def make(rate: float, burst: int) -> RateLimiter:
        settings = Settings(
            redis_url=infra["redis_url"],
            redis_namespace=namespace,
            rate_limit_per_s=rate,
            rate_limit_burst=burst,
        )
        return RateLimiter(redis, settings)

    yield make
    async for key in redis.scan_iter(f"{namespace}*"):
        await redis.delete(key)
    await redis.aclose()


async def _bucket(limiter: RateLimiter, identity: str) -> tuple[float, int]:
    """The shared bucket as its last script call left it: (tokens, when in ms)."""
    tokens, ts = await limiter.redis.hmget(
        limiter.settings.redis_key("rl", identity), "tokens", "ts"
    )
    return float(tokens), int(ts)


async def test_a_chunk_of_tokens_serves_the_next_requests_without_a_round_trip(
    limiters: Limiters,
) -> None:
    limiter = limiters(200, 400)  # takes min(400 // 20, 200 * 0.05) = 10 tokens a time
    assert limiter.chunk == 10
    first = await limiter.hit("ip:a")
    after_first = await _bucket(limiter, "ip:a")
    assert after_first[0] == 390  # one call took ten tokens out of the full bucket
    rest = [await limiter.hit("ip:a") for _ in range(9)]
    # The nine requests after it spent them here: the bucket saw no call since.
    assert await _bucket(limiter, "ip:a") == after_first
    assert all(d.allowed for d in [first, *rest])
    assert [d.remaining for d in [first, *rest]] == list(range(399, 389, -1))
    await asyncio.sleep(0.005)
    await limiter.hit("ip:a")  # the reserve is spent: the next chunk comes from the bucket
    assert (await _bucket(limiter, "ip:a"))[1] > after_first[1]


async def test_each_chunk_is_held_for_its_own_hold_time(limiters: Limiters) -> None:
    limiter = limiters(200, 400)  # chunks of 10
    limiter.HOLD_S = 0.3
    for _ in range(10):  # the first chunk, spent
        await limiter.hit("ip:c")
    await asyncio.sleep(0.2)
    await limiter.hit("ip:c")  # a second chunk, taken while the first one's hold still runs
    taken = await _bucket(limiter, "ip:c")
    await asyncio.sleep(0.2)  # past the first chunk's hold, inside the second's
    await limiter.hit("ip:c")
    assert await _bucket(limiter, "ip:c") == taken  # served from the second chunk


async def test_requests_that_miss_together_take_one_chunk_between_them(
    limiters: Limiters,
) -> None:
    limiter = limiters(200, 400)  # chunks of 10
    decisions = await asyncio.gather(*(limiter.hit("ip:b") for _ in range(60)))
    # One chunk, and a token for each request that missed while it was on its way: a chunk
    # each would have asked for 600 tokens of the 400 and refused a third of them.
    assert all(d.allowed for d in decisions)
    assert (await _bucket(limiter, "ip:b"))[0] >= 400 - 10 - 59


async def test_replicas_together_never_pass_the_shared_limit(limiters: Limiters) -> None:
    rate, burst = 100.0, 100
    replicas = [limiters(rate, burst) for _ in range(4)]
    assert replicas[0].chunk == 5  # min(100 // 20, 100 * 0.05)
    started = time.monotonic()
    allowed = 0
    for i in range(300):
        allowed += (await replicas[i % 4].hit("key:shared")).allowed
    elapsed = time.monotonic() - started
    # Every token spent came out of the one bucket (the burst, plus what refilled meanwhile);
    # at most four tokens of a chunk are left stranded on each replica.
    assert burst - 4 * 4 <= allowed <= burst + rate * elapsed + 1


async def test_spending_many_tokens_is_all_or_none(limiters: Limiters) -> None:
    """A batch's runs take their tokens together: refused, it takes none of them."""
    limiter = limiters(10, 100)
    assert (await limiter.spend("key:batch", 60)).allowed
    refused = await limiter.spend("key:batch", 60)
    assert not refused.allowed
    assert refused.retry_after_s >= 2  # 20 tokens short at 10/s
    assert 40 <= (await _bucket(limiter, "key:batch"))[0] < 41  # the refusal took nothing
    assert (await limiter.spend("key:batch", 40)).allowed
    assert not (await limiter.hit("key:batch")).allowed
