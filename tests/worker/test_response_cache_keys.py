"""The cache key and opt-in rules, and the hit/miss counter, in-process on a real Redis."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from flows.base import FlowResult
from shared.models import Run
from shared.settings import Settings
from tests.support.stack import TEST_REDIS
from worker import response_cache


def _ctx() -> Any:
    return SimpleNamespace(settings=Settings(cache_flows={"cached": 60}))


def _run(**fields: Any) -> Run:
    base = {"id": "r", "flow_id": "cached", "flow_version": "v1", "input": "hi", "tweaks": {}}
    return Run(**{**base, **fields})


def test_only_opted_in_session_less_runs_use_the_cache() -> None:
    ctx = _ctx()
    assert response_cache.ttl_for(ctx, _run()) == 60
    assert response_cache.ttl_for(ctx, _run(session_id="s1")) is None
    assert response_cache.ttl_for(ctx, _run(flow_id="other")) is None


def test_key_changes_with_version_input_and_tweaks_only() -> None:
    ctx = _ctx()
    key = response_cache.cache_key(ctx, _run())
    assert key == response_cache.cache_key(ctx, _run(id="another-run"))
    assert key != response_cache.cache_key(ctx, _run(flow_version="v2"))
    assert key != response_cache.cache_key(ctx, _run(input="hello"))
    assert key != response_cache.cache_key(ctx, _run(tweaks={"n": {"temperature": 0.5}}))


async def test_lookups_are_counted_as_hit_or_miss() -> None:
    settings = Settings(
        redis_url=TEST_REDIS,
        redis_namespace=f"fftest-{uuid.uuid4().hex[:8]}:",
        cache_flows={"cached": 60},
    )
    ctx: Any = SimpleNamespace(settings=settings, redis=Redis.from_url(TEST_REDIS))

    def count(result: str) -> float:
        value = REGISTRY.get_sample_value("flowfleet_cache_requests_total", {"result": result})
        return value or 0.0

    hits, misses = count("hit"), count("miss")
    assert await response_cache.lookup(ctx, _run()) is None
    await response_cache.store(ctx, _run(), FlowResult(text="answer", outputs={"o": "answer"}))
    cached = await response_cache.lookup(ctx, _run())
    await ctx.redis.aclose()

    assert cached is not None
    assert cached.text == "answer"
    assert (count("hit") - hits, count("miss") - misses) == (1, 1)
