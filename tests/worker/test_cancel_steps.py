"""A flow's steps check the run's cancel flag, at most once per STEP_CHECK_S."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from shared import events
from shared.redis_batch import RedisBatcher
from shared.settings import Settings
from tests.support.stack import Stack
from worker.cancel import CancelCheck, RunCancelled


async def test_a_step_after_the_interval_sees_the_flag_and_stops_the_flow(stack: Stack) -> None:
    settings = Settings(
        redis_url=stack.env["FLOWFLEET_REDIS_URL"],
        redis_namespace=stack.env["FLOWFLEET_REDIS_NAMESPACE"],
    )
    redis = Redis.from_url(settings.redis_url)
    ctx = SimpleNamespace(settings=settings, events=RedisBatcher(redis))
    run_id = str(uuid.uuid4())
    check = CancelCheck(ctx, run_id)  # type: ignore[arg-type]
    try:
        await redis.set(events.cancel_key(settings, run_id), "1")
        # Just checked (run_cancellable does as the check is made): this step goes on.
        await check.on_chain_start({}, {}, run_id=uuid.uuid4())
        await asyncio.sleep(CancelCheck.STEP_CHECK_S)
        with pytest.raises(RunCancelled):
            await check.on_chain_start({}, {}, run_id=uuid.uuid4())
    finally:
        await redis.delete(events.cancel_key(settings, run_id))
        await redis.aclose()
