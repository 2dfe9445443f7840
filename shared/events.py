"""Run events on Redis Streams: one bounded, expiring stream per run.

The worker appends ``status``, ``token``, ``output``, ``error`` and ``done``;
readers (SSE, long-poll wait) read from any id. Redis may lose these; the run's
result is always in the database.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from shared.settings import Settings

EVENT_TYPES = ("status", "token", "output", "error", "done")


def stream_key(settings: Settings, run_id: str) -> str:
    return settings.redis_key("run", run_id, "events")


async def publish(
    redis: Redis, settings: Settings, run_id: str, event: str, data: dict[str, Any]
) -> str:
    """Append one event and refresh the stream's expiry; returns the event id."""
    key = stream_key(settings, run_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(
            key,
            {"event": event, "data": json.dumps(data)},
            maxlen=settings.events_maxlen,
            approximate=True,
        )
        pipe.expire(key, settings.events_ttl_s)
        event_id, _ = await pipe.execute()
    return event_id.decode() if isinstance(event_id, bytes) else str(event_id)


def decode(entry: tuple[Any, dict[Any, Any]]) -> tuple[str, str, dict[str, Any]]:
    """(id, event, data) from a raw stream entry."""
    raw_id, fields = entry
    get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    event = get["event"].decode() if isinstance(get["event"], bytes) else get["event"]
    data = json.loads(get["data"])
    event_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    return event_id, event, data
