"""The fleet's per-minute series from the runs table: the same numbers on PostgreSQL (SQL
percentiles) and on SQLite (aggregated in Python), queue samples and worker beats from Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import insert

from api.services.fleet import fleet_view
from shared import fleet
from shared.db import create_engine, session_factory
from shared.models import RUNS
from shared.settings import Settings
from tests.support.stack import TEST_REDIS, migrated_database


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory.mktemp("fleet")) as url:
        yield url


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[Settings, Any, Redis]]:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=TEST_REDIS,
        redis_namespace=f"fftest-fleet-{tag}:",
        queue_name=f"fftest-fleet-{tag}",
        lease_s=30,
    )
    engine = create_engine(settings)
    redis = Redis.from_url(TEST_REDIS)
    try:
        yield settings, engine, redis
    finally:
        await engine.dispose()
        keys = [k async for k in redis.scan_iter(f"fftest-fleet-{tag}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def _run(created: datetime, status: str, latency_ms: float | None, **extra: Any) -> dict[str, Any]:
    finished = None if latency_ms is None else created + timedelta(milliseconds=latency_ms)
    return {
        "id": str(uuid.uuid4()),
        "flow_id": "f",
        "flow_version": "v",
        "owner": "o",
        "status": status,
        "attempts": 1,
        "cached": False,
        "tweaks": {},
        "meta": {},
        "created_at": created,
        "started_at": created,
        "finished_at": finished,
        "error_code": None,  # every row names the same columns (one executemany)
        **extra,
    }


async def test_minutes_count_latency_percentiles_errors_and_dead_letters(
    world: tuple[Settings, Any, Redis],
) -> None:
    settings, engine, redis = world
    now = datetime.now(UTC)
    two_ago = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    at = two_ago + timedelta(seconds=1)
    rows = [_run(at, "succeeded", ms) for ms in (100, 200, 300, 400, 1000)]
    rows += [_run(at, "failed", 50, error_code="backend_error")]
    rows += [_run(at, "failed", 60, error_code="exhausted_retries")]
    rows += [_run(at, "cancelled", 10)]
    rows += [_run(at, "queued", None), _run(at, "running", None)]
    rows += [_run(now - timedelta(hours=3), "succeeded", 5)]  # outside the window
    async with engine.begin() as conn:
        await conn.execute(insert(RUNS), rows)
    await redis.rpush(settings.queue_name, "m1", "m2")
    await redis.rpush(settings.queue_name + fleet.PRIORITY_SUFFIXES[1], "m3")
    sampled = await fleet.record_queue_depth(redis, settings)
    await redis.zadd(fleet.workers_key(settings), {"w-live": await fleet.redis_now(redis)})
    await redis.zadd(fleet.workers_key(settings), {"w-dead": await fleet.redis_now(redis) - 300})
    await redis.sadd(fleet.held_key(settings, "w-live"), "r1", "r2")

    async with session_factory(engine)() as session:
        view = await fleet_view(session, redis, settings, minutes=5)

    assert sampled == 3
    assert view.queue_depth == 3
    assert (view.queued_runs, view.running_runs, view.dead_letters) == (1, 1, 1)
    assert len(view.series) == 5
    assert [m["t"] for m in view.series] == sorted(m["t"] for m in view.series)
    assert view.series[-1]["t"] == now.replace(second=0, microsecond=0)
    minute = next(m for m in view.series if m["t"] == two_ago)
    assert (minute["submitted"], minute["finished"], minute["failed"]) == (10, 5, 2)
    assert minute["cancelled"] == 1
    assert minute["runs_per_s"] == pytest.approx(7 / 60, abs=1e-4)
    assert minute["error_rate"] == pytest.approx(2 / 7)
    assert minute["p50_ms"] == pytest.approx(300, abs=1)
    assert minute["p99_ms"] == pytest.approx(400 + 600 * 0.96, abs=1)  # percentile_cont
    empty = view.series[0]
    assert (empty["submitted"], empty["p50_ms"], empty["error_rate"]) == (0, None, None)
    assert view.series[-1]["queue_depth"] == 3  # the leader's sample of this minute
    assert empty["queue_depth"] is None
    workers = {w["id"]: w for w in view.workers}
    assert workers["w-live"]["alive"] is True
    assert workers["w-live"]["held_runs"] == 2
    assert workers["w-dead"]["alive"] is False


async def test_a_minute_keeps_its_deepest_queue_sample(world: tuple[Settings, Any, Redis]) -> None:
    settings, _, redis = world
    await redis.rpush(settings.queue_name, *[f"m{i}" for i in range(5)])
    assert await fleet.record_queue_depth(redis, settings) == 5
    await redis.ltrim(settings.queue_name, 0, 0)
    assert await fleet.record_queue_depth(redis, settings) == 1
    now = await fleet.redis_now(redis)
    samples = await fleet.queue_samples(redis, settings, now - 120)
    assert max(samples.values()) == 5
