"""Fleet-wide concurrency limits per LLM backend: a Redis semaphore with expiring leases.

Holders live in a sorted set scored by lease expiry (Redis time, ms). A Lua
script drops expired holders and takes a place atomically, so a worker that
died frees its places when its leases run out; a live holder renews its lease
while its call lasts. Waiters do not spin: one waiter per process and backend
contends (the others queue on a local lock) and it blocks on a Redis list that
every release pushes to, with a timeout as the fallback for expired leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("backend_limits")

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return 1
end
return 0
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return 1
"""


class BackendLimiter:
    """Places per backend shared by every process that uses the same Redis namespace."""

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        *,
        holder_prefix: str = "",
        lease_s: float | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.holder_prefix = holder_prefix or uuid.uuid4().hex[:8]
        self.lease_ms = int((lease_s or settings.backend_lease_s) * 1000)
        self.poll_s = poll_s
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._contenders: dict[str, asyncio.Lock] = {}

    def _keys(self, backend: str) -> tuple[str, str]:
        return (
            self.settings.redis_key("backend", backend, "holders"),
            self.settings.redis_key("backend", backend, "released"),
        )

    async def try_acquire(self, backend: str, limit: int, holder: str) -> bool:
        """Take a place if one is free (expired holders are dropped first)."""
        holders, _ = self._keys(backend)
        return bool(await self._acquire(keys=[holders], args=[holder, self.lease_ms, limit]))

    async def release(self, backend: str, holder: str, limit: int) -> None:
        """Give the place back and wake one waiter."""
        await self._release(keys=list(self._keys(backend)), args=[holder, limit])

    async def holders(self, backend: str) -> int:
        """How many places are taken now (expired leases included until the next acquire)."""
        return int(await self.redis.zcard(self._keys(backend)[0]))

    async def _wait_turn(self, backend: str, limit: int, holder: str) -> None:
        _, released = self._keys(backend)
        lock = self._contenders.setdefault(backend, asyncio.Lock())
        async with lock:  # FIFO within the process: only the head of the line talks to Redis
            while not await self.try_acquire(backend, limit, holder):
                # Woken by a release; the timeout covers holders whose lease ran out.
                await self.redis.blpop([released], timeout=self.poll_s)

    async def _keep_alive(self, backend: str, holder: str) -> None:
        holders, _ = self._keys(backend)
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            if not await self._renew(keys=[holders], args=[holder, self.lease_ms]):
                log.warning("backend_limit.lease_lost", backend=backend, holder=holder)
                return

    @contextlib.asynccontextmanager
    async def slot(self, backend: str, limit: int) -> AsyncIterator[None]:
        """Hold one of ``limit`` places on ``backend`` for the duration of the block."""
        holder = f"{self.holder_prefix}:{uuid.uuid4().hex[:12]}"
        await self._wait_turn(backend, limit, holder)
        renewing = asyncio.create_task(self._keep_alive(backend, holder))
        try:
            yield
        finally:
            renewing.cancel()
            # Released even when the caller was cancelled; shielded so the place is not leaked
            # for a whole lease by a cancellation arriving here.
            await asyncio.shield(self.release(backend, holder, limit))
