"""The group-commit writer: runs submitted together share a write; none is lost or doubled."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import structlog
from redis.asyncio import Redis
from sqlalchemy import event, func, select

from api.run_writer import RunWriter
from api.services.flows import FlowRef
from api.services.runs import new_run
from shared.db import create_engine, session_factory
from shared.models import Run
from shared.schemas import RunCreate
from shared.settings import Settings
from tests.support.stack import Stack


def _run_and_request(message: bytes) -> tuple[str, str | None]:
    envelope = json.loads(message)
    body = json.loads(base64.b64decode(envelope["body"]))
    return str(body[0][0]), envelope["headers"].get("request_id")


async def test_runs_submitted_together_share_one_commit_and_are_queued_once(
    stack: Stack,
) -> None:
    """...each message carrying the request id of the request that submitted its run
    (the shared write runs in one task; the ids must not be that task's)."""
    settings = Settings(
        database_url=stack.env["FLOWFLEET_DATABASE_URL"],
        redis_url=stack.env["FLOWFLEET_REDIS_URL"],
        queue_name=f"fftest-writer-{uuid.uuid4().hex[:8]}",  # no worker reads it
    )
    engine = create_engine(settings)
    commits = 0

    @event.listens_for(engine.sync_engine, "commit")
    def _count(_: object) -> None:
        nonlocal commits
        commits += 1

    redis = Redis.from_url(settings.redis_url)
    writer = RunWriter(session_factory(engine), redis, settings)
    flow = FlowRef("prompt", "python", "writer-test")
    runs = [new_run(flow, RunCreate(input=f"together {i}"), "anonymous") for i in range(50)]
    ids = sorted(run.id for run in runs)

    async def submit(run: Run) -> None:
        with structlog.contextvars.bound_contextvars(request_id=f"req-{run.input}"):
            await writer.accept(run)

    try:
        await asyncio.gather(*(submit(run) for run in runs))
        writes = commits

        async with session_factory(engine)() as session:
            stored = await session.scalar(select(func.count()).where(Run.id.in_(ids)))
        messages = [_run_and_request(m) for m in await redis.lrange(settings.queue_name, 0, -1)]
    finally:
        await redis.delete(settings.queue_name)
        async with session_factory(engine)() as session:
            await session.execute(Run.__table__.delete().where(Run.id.in_(ids)))
            await session.commit()
        await redis.aclose()
        await engine.dispose()

    assert stored == 50
    assert sorted(run_id for run_id, _ in messages) == ids  # each run queued exactly once
    inputs = {run.id: run.input for run in runs}
    assert all(request == f"req-{inputs[run_id]}" for run_id, request in messages)
    assert writes <= 2  # one shared write (two if the first began before the rest arrived)
