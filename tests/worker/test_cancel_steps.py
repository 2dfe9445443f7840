"""A run's cancel flag: checked as its flow starts, and by steps at most once per STEP_CHECK_S."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from shared import events
from shared.redis_batch import RedisBatcher
from shared.settings import Settings
from tests.support.stack import Stack
from worker.cancel import CancelCheck, RunCancelled, run_cancellable


@pytest.fixture
async def ctx(stack: Stack) -> AsyncIterator[SimpleNamespace]:
    """What the cancel checks read of a worker's context, on the test stack's Redis."""
    settings = Settings(
        redis_url=stack.env["FLOWFLEET_REDIS_URL"],
        redis_namespace=stack.env["FLOWFLEET_REDIS_NAMESPACE"],
    )
    redis = Redis.from_url(settings.redis_url)
    yield SimpleNamespace(settings=settings, events=RedisBatcher(redis), redis=redis)
    await redis.aclose()


async def _flag(ctx: SimpleNamespace) -> str:
    run_id = str(uuid.uuid4())
    await ctx.redis.set(events.cancel_key(ctx.settings, run_id), "1", ex=60)
    return run_id


async def test_a_step_after_the_interval_sees_the_flag_and_stops_the_flow(
    ctx: SimpleNamespace,
) -> None:
    run_id = await _flag(ctx)
    check = CancelCheck(ctx, run_id)  # type: ignore[arg-type]
    # Just checked (run_cancellable does as the check is made): this step goes on.
    await check.on_chain_start({}, {}, run_id=uuid.uuid4())
    await asyncio.sleep(CancelCheck.STEP_CHECK_S)
    with pytest.raises(RunCancelled):
        await check.on_chain_start({}, {}, run_id=uuid.uuid4())


async def test_a_flagged_run_is_stopped_by_the_check_that_travels_with_its_start(
    ctx: SimpleNamespace,
) -> None:
    run_id = await _flag(ctx)
    steps: list[str] = []

    async def work() -> str:
        steps.append("started")  # the flow starts without waiting for the first check
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise
        return "finished"

    with pytest.raises(RunCancelled):
        await asyncio.wait_for(run_cancellable(ctx, run_id, work()), 5)  # type: ignore[arg-type]
    assert steps == ["started", "cancelled"]


async def test_an_unflagged_run_answers_what_its_work_returns(ctx: SimpleNamespace) -> None:
    async def work() -> str:
        return "answer"

    assert await run_cancellable(ctx, str(uuid.uuid4()), work()) == "answer"  # type: ignore[arg-type]
