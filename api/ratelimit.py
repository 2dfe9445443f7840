"""Per-caller token bucket in Redis, its tokens taken a few at a time; and the queue caps."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import KeyQueueFull, QueueFull
from shared.models import Run
from shared.redis_batch import RedisBatcher
from shared.run_status import RunStatus
from shared.settings import Settings

# KEYS[1] bucket hash; ARGV: rate per s, burst, tokens wanted, all-or-none (1/0). Time comes
# from the Redis server so every replica shares one clock. Grants what it has, up to the
# tokens wanted (all-or-none: all of them or nothing, for a batch's runs).
# Returns {tokens granted, tokens left (floor), ms until 1 token (all-or-none: until all)}.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local whole = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local granted = 0
if whole then
  if tokens >= want then granted = want; tokens = tokens - want end
elseif tokens >= 1 then granted = math.min(want, math.floor(tokens)); tokens = tokens - granted end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local wait = 0
local need = 1
if whole and granted == 0 then need = want end
if tokens < need then wait = math.ceil((need - tokens) * 1000 / rate) end
return {granted, math.floor(tokens), wait}
"""


def rate_identity(settings: Settings, owner: str, client_host: str | None) -> str:
    """Whose bucket a request spends: its key's, or its client IP's with auth off."""
    return f"key:{owner}" if settings.auth_on else f"ip:{client_host or 'unknown'}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int = 0  # whole seconds until a token is there (0 when one is)

    def headers(self) -> dict[str, str]:
        """IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers), plus Retry-After."""
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.retry_after_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.retry_after_s))
        return out


@dataclass
class _Reserve:
    """Tokens this replica took from an identity's bucket and has not spent yet."""

    tokens: int
    left: int  # what the bucket held after the grant
    until: float  # unspent tokens lapse then (monotonic clock)


class RateLimiter:
    """Token bucket per identity (key id, or client IP when auth is off), shared by replicas.

    A script call takes up to ``chunk`` tokens at once, and this replica spends them on
    the identity's next requests without a round trip, for at most ``HOLD_S``: a script
    call per request is a visible part of a submit's latency. The limit still holds across the
    fleet (every token spent came out of the shared bucket); what it costs is a caller near
    its limit finding a few tokens stranded on another replica for up to ``HOLD_S``, at
    most 5 % of the rate per replica. Calls of concurrent requests share one pipeline.
    """

    HOLD_S = 1.0
    MAX_RESERVES = 10_000

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.batch = RedisBatcher(redis)
        self._sha = hashlib.sha1(TOKEN_BUCKET.encode()).hexdigest()
        rate, burst = settings.rate_limit_per_s, settings.rate_limit_burst
        # 50 ms of the rate and 5 % of the burst at most, so a reserve is small beside both.
        self.chunk = max(1, min(burst // 20, math.ceil(rate * 0.05)))
        self._reserves: dict[str, _Reserve] = {}
        self._taking: set[str] = set()  # identities with a chunk on its way

    async def hit(self, identity: str) -> Decision:
        burst = self.settings.rate_limit_burst
        held = self._reserves.get(identity)
        if held is not None and held.tokens > 0 and time.monotonic() < held.until:
            held.tokens -= 1
            return Decision(allowed=True, limit=burst, remaining=held.left + held.tokens)
        # One chunk on its way per identity: the requests that miss meanwhile take one token
        # each, as they would without a reserve, rather than a chunk each (which would take
        # a burst's worth of tokens out of the bucket at once and refuse the rest).
        want = 1 if identity in self._taking else self.chunk
        if want > 1:
            self._taking.add(identity)
        try:
            granted, left, wait_ms = await self._take(identity, want)
        finally:
            if want > 1:
                self._taking.discard(identity)
        reserved = self._keep(identity, granted - 1, left).tokens if granted > 1 else 0
        return Decision(
            allowed=granted >= 1,
            limit=burst,
            remaining=left + reserved,
            retry_after_s=math.ceil(wait_ms / 1000),
        )

    async def spend(self, identity: str, tokens: int) -> Decision:
        """Take ``tokens`` more from the identity's bucket at once, all or none: a request
        that submits several runs pays one token per run (the reserve first)."""
        burst = self.settings.rate_limit_burst
        if tokens <= 0:
            return Decision(allowed=True, limit=burst, remaining=burst)
        held = self._reserves.get(identity)
        if held is not None and time.monotonic() >= held.until:
            held = None
        local = min(held.tokens, tokens) if held is not None else 0
        granted, left, wait_ms = (0, 0, 0)
        if tokens > local:
            granted, left, wait_ms = await self._take(identity, tokens - local, whole=True)
            if granted < tokens - local:
                return Decision(
                    allowed=False,
                    limit=burst,
                    remaining=left + local,
                    retry_after_s=max(1, math.ceil(wait_ms / 1000)),
                )
        if held is not None:
            held.tokens -= local
            left = held.left if granted == 0 else left
        return Decision(allowed=True, limit=burst, remaining=left + (held.tokens if held else 0))

    async def _take(self, identity: str, want: int, whole: bool = False) -> tuple[int, int, int]:
        rate, burst = self.settings.rate_limit_per_s, self.settings.rate_limit_burst
        key = self.settings.redis_key("rl", identity)
        call = ("evalsha", self._sha, 1, key, rate, burst, want, "1" if whole else "0")
        try:
            reply = await self.batch.submit(*call)
        except NoScriptError:  # a restarted or flushed Redis: load it once, then again
            await self.redis.script_load(TOKEN_BUCKET)
            reply = await self.batch.submit(*call)
        return int(reply[0]), int(reply[1]), int(reply[2])

    def _keep(self, identity: str, tokens: int, left: int) -> _Reserve:
        # Replaces what was held: a chunk is taken only once the reserve is spent or lapsed,
        # and only one is on its way per identity, so nothing held is dropped.
        now = time.monotonic()
        if len(self._reserves) >= self.MAX_RESERVES:
            self._reserves = {k: r for k, r in self._reserves.items() if now < r.until}
        held = self._reserves[identity] = _Reserve(tokens, left, now + self.HOLD_S)
        return held


@dataclass
class QueueCounts:
    """Queued runs per flow and per owner (key), as last counted plus what this replica took."""

    by_flow: dict[str, int]
    by_owner: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_flow.values())


class QueueGauge:
    """Queued runs overall, per flow and per owner: one grouped COUNT per replica per second
    at most.

    The database is the truth (a Redis counter would drift whenever a worker dies
    between claim and decrement); the index on (status, created_at) keeps it cheap.
    """

    def __init__(self, ttl_s: float = 1.0) -> None:
        self.ttl_s = ttl_s
        self._at = -math.inf
        self._counts = QueueCounts({}, {})
        self._lock = asyncio.Lock()
        # Runs this replica admitted, with when: a count that began before one was admitted
        # may not see its row, so the admission is added back on top of that count.
        self._admitted: list[tuple[float, str, str, int]] = []

    async def counts(self, session: AsyncSession) -> QueueCounts:
        # The count runs on the request's own session: taking a second pooled connection
        # while the request may hold one deadlocks the pool under a burst (every connection
        # idle in transaction, waiting for another).
        if time.monotonic() - self._at < self.ttl_s:
            return self._counts
        async with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                await self.refresh(session)
        return self._counts

    async def refresh(self, session: AsyncSession) -> None:
        """Count now (the API's refresher calls this twice per TTL, off the request path)."""
        started = time.monotonic()
        rows = await session.execute(
            select(Run.flow_id, Run.owner, func.count())
            .where(Run.status == RunStatus.QUEUED)
            .group_by(Run.flow_id, Run.owner)
        )
        counts = QueueCounts({}, {})
        for flow, owner, n in rows.all():
            counts.by_flow[flow] = counts.by_flow.get(flow, 0) + int(n)
            counts.by_owner[owner] = counts.by_owner.get(owner, 0) + int(n)
        # An admission's row is committed a little after its check (the shared write): one
        # admitted shortly before the count began, or since, may be missing from it, so it is
        # added back (counted twice at worst, until a later count: erring toward the cap).
        recent = started - self.ttl_s / 2
        self._admitted = [entry for entry in self._admitted if entry[0] >= recent]
        for _, flow, owner, n in self._admitted:
            counts.by_flow[flow] = counts.by_flow.get(flow, 0) + n
            counts.by_owner[owner] = counts.by_owner.get(owner, 0) + n
        self._counts = counts
        self._at = time.monotonic()

    async def check(
        self,
        settings: Settings,
        session: AsyncSession,
        flow_id: str,
        owner: str,
        adding: int = 1,
    ) -> None:
        """Raise ``QueueFull`` (503) when taking ``adding`` more runs would pass the overall or
        the flow's cap, ``KeyQueueFull`` (429) when it would pass the owner's share."""
        if not capped(settings):
            return
        counts = await self.counts(session)
        total, mine = counts.total, counts.by_flow.get(flow_id, 0)
        owned = counts.by_owner.get(owner, 0)
        if settings.max_queued_per_key and owned + adding > settings.max_queued_per_key:
            raise KeyQueueFull(
                f"this key has {owned} runs queued and its share is "
                f"{settings.max_queued_per_key} (FLOWFLEET_MAX_QUEUED_PER_KEY); "
                f"wait for some to finish before adding {adding} more",
                headers={"Retry-After": "5"},
            )
        if settings.max_queued_runs and total + adding > settings.max_queued_runs:
            raise QueueFull(
                f"{total} runs are queued (cap {settings.max_queued_runs}); retry later",
                headers={"Retry-After": "5"},
            )
        if settings.max_queued_per_flow and mine + adding > settings.max_queued_per_flow:
            raise QueueFull(
                f"{mine} runs of flow {flow_id!r} are queued "
                f"(cap {settings.max_queued_per_flow}); retry later",
                headers={"Retry-After": "5"},
            )
        # Count what this replica just took, so a burst inside one second cannot overshoot.
        self._admitted.append((time.monotonic(), flow_id, owner, adding))
        self._counts = QueueCounts(
            {**counts.by_flow, flow_id: mine + adding}, {**counts.by_owner, owner: owned + adding}
        )


def capped(settings: Settings) -> bool:
    """Whether any queue cap is set (the queue is counted only then)."""
    return bool(
        settings.max_queued_runs or settings.max_queued_per_flow or settings.max_queued_per_key
    )
