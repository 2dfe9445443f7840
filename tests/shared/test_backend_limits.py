"""The fleet-wide backend semaphore on a real Redis: the limit holds, waiters get their turn,
and a killed holder's place comes back when its lease runs out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import pytest
from redis.asyncio import Redis

from shared.backend_limits import BackendLimiter
from shared.settings import Settings
from tests.support.llm_sim import REPO_ROOT
from tests.support.stack import IN_CI, TEST_REDIS, redis_available

pytestmark = pytest.mark.skipif(
    not IN_CI and not redis_available(), reason="needs Redis at 127.0.0.1:6379"
)


def _settings() -> Settings:
    return Settings(redis_url=TEST_REDIS, redis_namespace=f"fftest-{uuid.uuid4().hex[:8]}:")


async def test_at_most_limit_holders_at_once_and_every_waiter_gets_its_turn() -> None:
    settings = _settings()
    redis = Redis.from_url(TEST_REDIS)
    # Two limiters stand for two worker processes sharing the namespace.
    limiters = [BackendLimiter(redis, settings, lease_s=5) for _ in range(2)]
    inside = peak = done = 0

    async def call(limiter: BackendLimiter) -> None:
        nonlocal inside, peak, done
        async with limiter.slot("sim", 2):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.05)
            inside -= 1
        done += 1

    started = time.monotonic()
    await asyncio.gather(*(call(limiters[i % 2]) for i in range(12)))
    elapsed = time.monotonic() - started

    assert (peak, done) == (2, 12)
    # Released places wake waiters through Redis, not the 1 s poll fallback.
    assert elapsed < 3
    assert await limiters[0].holders("sim") == 0
    await redis.aclose()


async def test_a_killed_holders_place_returns_when_its_lease_expires() -> None:
    settings = _settings()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys\n"
            "from redis.asyncio import Redis\n"
            "from shared.backend_limits import BackendLimiter\n"
            "from shared.settings import Settings\n"
            "async def main():\n"
            f"    s = Settings(redis_url={TEST_REDIS!r},\n"
            f"                 redis_namespace={settings.redis_namespace!r})\n"
            "    limiter = BackendLimiter(Redis.from_url(s.redis_url), s, lease_s=1.5)\n"
            "    async with limiter.slot('sim', 1):\n"
            "        print('held', flush=True)\n"
            "        await asyncio.sleep(3600)\n"
            "asyncio.run(main())\n",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    redis = Redis.from_url(TEST_REDIS)
    limiter = BackendLimiter(redis, settings, lease_s=5)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        await asyncio.sleep(2)  # past one lease: the live holder renews, so it still holds
        assert not await limiter.try_acquire("sim", 1, "probe")
        holder.kill()
        holder.wait()
        killed_at = time.monotonic()
        async with limiter.slot("sim", 1):
            waited = time.monotonic() - killed_at
        # The renewed lease (1.5 s) runs out, then the poll fallback (1 s) finds the place.
        assert waited < 4
    finally:
        if holder.poll() is None:
            holder.kill()
        await redis.aclose()
