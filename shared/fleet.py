"""The fleet as Redis sees it, for every process: workers' heartbeats, the queue's depth.

- ``<ns>deliveries:workers``: sorted set, worker id -> its last heartbeat (Redis's clock).
  Workers write it (worker/deliveries.py); the sweep leader forgets silent ones; the API
  reads it to show who is alive.
- ``<ns>fleet:queue_depth``: hash, minute (epoch seconds of its start) -> the deepest
  queue the sweep leader saw in that minute. The leader samples on each sweep, so the
  console's chart has history even when nobody watched; a day of minutes is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from shared.settings import Settings

# Kombu's Redis transport keeps priorities 3, 6 and 9 in sibling lists "<queue>\x06\x16<n>".
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
SAMPLES_KEPT_S = 24 * 3600


def workers_key(settings: Settings) -> str:
    return settings.redis_key("deliveries", "workers")


def held_key(settings: Settings, worker_id: str) -> str:
    return settings.redis_key("deliveries", "held", worker_id)


def _samples_key(settings: Settings) -> str:
    return settings.redis_key("fleet", "queue_depth")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def redis_now(redis: Redis) -> float:
    """Redis's clock, the one every process shares."""
    seconds, micros = await redis.time()
    return float(seconds) + micros / 1e6


async def queue_depth(redis: Redis, settings: Settings) -> int:
    """Messages waiting in the run queue, every priority list together."""
    async with redis.pipeline(transaction=False) as pipe:
        for suffix in PRIORITY_SUFFIXES:
            pipe.llen(settings.queue_name + suffix)
        return sum(int(n) for n in await pipe.execute())


async def record_queue_depth(redis: Redis, settings: Settings) -> int:
    """Sample the queue into its minute (the deepest sample of the minute wins); one writer:
    the sweep leader. Returns the depth sampled."""
    now = await redis_now(redis)
    depth = await queue_depth(redis, settings)
    minute = str(int(now // 60 * 60))
    key = _samples_key(settings)
    seen = await redis.hget(key, minute)
    if seen is None or int(seen) < depth:
        await redis.hset(key, minute, depth)
    if int(now) % 600 < settings.sweep_interval_s:  # now and then: drop what is a day old
        old = [f for f in await redis.hkeys(key) if int(_text(f)) < now - SAMPLES_KEPT_S]
        if old:
            await redis.hdel(key, *old)
    return depth


async def queue_samples(redis: Redis, settings: Settings, since: float) -> dict[int, int]:
    """Minute start (epoch seconds) -> deepest queue sampled in it, from ``since`` on."""
    found = await redis.hgetall(_samples_key(settings))
    samples = {int(_text(k)): int(_text(v)) for k, v in found.items()}
    return {minute: depth for minute, depth in samples.items() if minute >= since}


@dataclass(frozen=True)
class WorkerBeat:
    id: str
    last_seen: float  # epoch seconds, Redis's clock
    held: int  # runs delivered to it and not finished with


async def worker_beats(redis: Redis, settings: Settings) -> list[WorkerBeat]:
    """Every worker that beat and was not yet forgotten by the sweep, latest first."""
    found = await redis.zrevrange(workers_key(settings), 0, 999, withscores=True)
    beats = [(worker, float(score)) for worker, score in cast(list[tuple[Any, Any]], found)]
    ids = [_text(worker) for worker, _ in beats]
    async with redis.pipeline(transaction=False) as pipe:
        for worker_id in ids:
            pipe.scard(held_key(settings, worker_id))
        held = await pipe.execute() if ids else []
    return [
        WorkerBeat(worker_id, float(score), int(n))
        for worker_id, (_, score), n in zip(ids, beats, held, strict=True)
    ]
