"""Answers from Redis for repeated session-less runs of flows that opt in.

A flow opts in with ``FLOWFLEET_CACHE_FLOWS='{"flow-id": ttl_seconds}'``. A run
without a session whose owner (key), flow version, input and tweaks match an answer stored
within the TTL is answered from the cache without calling any backend, and
recorded with ``cached: true``. Redis may lose the cache; a lost entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flows.base import FlowResult
from shared.logging import error_text, get_logger
from shared.metrics import CACHE_REQUESTS
from shared.models import Run
from worker.context import WorkerContext

log = get_logger("worker.response_cache")


def ttl_for(ctx: WorkerContext, run: Run) -> float | None:
    """The flow's cache TTL, or None when this run may not use the cache."""
    if run.session_id:  # a conversation's answer depends on its history
        return None
    ttl = ctx.settings.cache_flows.get(run.flow_id)
    return ttl if ttl and ttl > 0 else None


def cache_key(ctx: WorkerContext, run: Run) -> str:
    """The key of a run's answer: owner, flow id and version, input, tweaks.

    The owner is part of it: a hit is fast, so a shared entry would let one tenant learn
    by timing (or by the ``cached`` flag) what another asked.
    """
    material = json.dumps(
        [run.owner, run.flow_id, run.flow_version, run.input, run.tweaks or {}],
        sort_keys=True,
        separators=(",", ":"),
    )
    return ctx.settings.redis_key("cache", hashlib.sha256(material.encode()).hexdigest())


async def lookup(ctx: WorkerContext, run: Run) -> FlowResult | None:
    """The cached answer for this run, if its flow caches and one is stored."""
    if ttl_for(ctx, run) is None:
        return None
    try:
        raw = await ctx.redis.get(cache_key(ctx, run))
    except Exception as exc:  # the cache is an optimisation: no Redis, no hit
        log.warning("cache.unavailable", run_id=run.id, error=error_text(exc))
        raw = None
    CACHE_REQUESTS.labels(result="hit" if raw else "miss").inc()
    if not raw:
        return None
    data: dict[str, Any] = json.loads(raw)
    return FlowResult(text=data.get("text"), outputs=data.get("outputs") or {})


async def store(ctx: WorkerContext, run: Run, result: FlowResult) -> None:
    """Keep a fresh answer for the flow's TTL."""
    ttl = ttl_for(ctx, run)
    if ttl is None:
        return
    try:
        await ctx.redis.set(cache_key(ctx, run), json.dumps(result.as_json()), px=int(ttl * 1000))
    except Exception as exc:
        log.warning("cache.store_failed", run_id=run.id, error=error_text(exc))
