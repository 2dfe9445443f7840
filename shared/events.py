"""Run events on Redis Streams: one bounded, expiring stream per run.

The worker appends ``status``, ``token``, ``tool_call``, ``tool_result`` (an agent's
steps, worker/tool_events.py), ``output``, ``error`` and ``done``;
readers (SSE, long-poll wait) read from any id. Redis may lose these; the run's
result is always in the database.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from shared.settings import Settings


class EventType(StrEnum):
    """The one list of run event types (a member compares equal to its string).

    Add a type here (e.g. an agent's ``tool_call`` / ``tool_result``) and in docs/events.md.
    """

    STATUS = "status"
    TOKEN = "token"
    OUTPUT = "output"
    ERROR = "error"
    DONE = "done"
    TOOL_CALL = "tool_call"  # an agent called a tool (docs/agents.md)
    TOOL_RESULT = "tool_result"  # what the tool returned
    PROGRESS = "progress"  # an ingest's progress: chunks embedded and stored (docs/rag.md)


# Events after which the stream's expiry is (re)set; tokens skip the EXPIRE round-trip work.
EXPIRING_EVENTS = frozenset({EventType.STATUS, EventType.DONE})
TOOL_EVENTS = (EventType.TOOL_CALL, EventType.TOOL_RESULT)  # an agent's steps, in order
Event = tuple[str, str, dict[str, Any]]  # (stream entry id, event, data)
# A larger final row (a long output) is left out of the end entry, so Redis does not hold
# the output twice for the events' lifetime; its waiters read the row back instead.
FINAL_MAX_BYTES = 16_384


def stream_key(settings: Settings, run_id: str) -> str:
    return settings.redis_key("run", run_id, "events")


def end_key(settings: Settings, run_id: str) -> str:
    """A one-entry stream written with ``done``: waiters block on it, not on every token."""
    return settings.redis_key("run", run_id, "end")


def cancel_key(settings: Settings, run_id: str) -> str:
    """The flag the API sets to ask the worker executing a run to stop it."""
    return settings.redis_key("run", run_id, "cancel")


async def publish(
    redis: Redis,
    settings: Settings,
    run_id: str,
    event: str,
    data: dict[str, Any],
    *,
    final: dict[str, Any] | None = None,
) -> str:
    """Append one event (bounded stream); status and done also set the expiry; returns its id.

    ``final`` (with ``done``): the run's columns as the finishing worker committed them
    (datetimes go as ISO 8601). They go into the end entry only, up to ``FINAL_MAX_BYTES`` (see
    ``final_run``): a waiter answers from them without reading the row back; SSE readers
    never see them.
    """
    key = stream_key(settings, run_id)
    fields = {"event": event, "data": json.dumps(data)}
    if event not in EXPIRING_EVENTS:
        event_id = await redis.xadd(key, fields, maxlen=settings.events_maxlen, approximate=True)  # type: ignore[arg-type]
    else:
        # A status sets an expiry that outlives the longest run; done restarts it from the end.
        ttl = settings.events_ttl_s
        if event != "done":
            ttl += int(settings.run_timeout_s)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, fields, maxlen=settings.events_maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.expire(key, ttl)
            if event == "done":
                end = dict(fields)
                row = None if final is None else json.dumps(final, default=_iso)
                if row is not None and len(row) <= FINAL_MAX_BYTES:
                    end["run"] = row
                pipe.xadd(end_key(settings, run_id), end, maxlen=1)  # type: ignore[arg-type]
                pipe.expire(end_key(settings, run_id), ttl)
            results = await pipe.execute()
        event_id = results[0]
    return event_id.decode() if isinstance(event_id, bytes) else str(event_id)


def _iso(value: Any) -> str:
    # The final row's datetimes; the API parses them back (api.services.events.with_final).
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def final_run(reply: Any) -> dict[str, Any] | None:
    """The run's final columns from an XREAD reply on its end stream, when the entry has them
    (a worker's done has; a cancel of a queued run, answered by the API, has not)."""
    if not reply:
        return None
    _, entries = reply[0]
    _, fields = entries[-1]
    raw = fields.get(b"run", fields.get("run"))
    return json.loads(raw) if raw else None


def decode(entry: tuple[Any, dict[Any, Any]]) -> Event:
    """(id, event, data) from a raw stream entry."""
    raw_id, fields = entry
    get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    event = get["event"].decode() if isinstance(get["event"], bytes) else get["event"]
    data = json.loads(get["data"])
    event_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    return event_id, event, data


async def read(
    redis: Redis,
    settings: Settings,
    run_id: str,
    after: str = "0-0",
    *,
    block_ms: int | None = None,
    count: int = 1000,
) -> list[Event]:
    """Events after id ``after``; with ``block_ms`` waits up to that long for the first one."""
    reply: Any = await redis.xread(
        {stream_key(settings, run_id): after}, count=count, block=block_ms
    )
    if not reply:
        return []
    _key, entries = reply[0]
    return [decode(entry) for entry in entries]


async def last_id(redis: Redis, settings: Settings, run_id: str) -> tuple[str, str | None]:
    """The newest event's (id, type), or ("0-0", None) when the stream is empty or gone."""
    entries: Any = await redis.xrevrange(stream_key(settings, run_id), count=1)
    if not entries:
        return "0-0", None
    event_id, event, _ = decode(entries[0])
    return event_id, event
