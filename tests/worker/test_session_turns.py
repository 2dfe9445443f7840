"""The claim's turn rule on the database itself, on PostgreSQL and on SQLite (the embedded
default): a session's later run is not claimed while an earlier one is unfinished, its next
turn is named once that one ends, runs without a session or of another session are free,
and (PostgreSQL) the rule's queries can use the partial index of unfinished runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from flows.base import FlowResult
from shared.models import RUNS
from shared.session_order import first_unfinished, next_turn
from tests.support.worker_context import worker_context
from worker import deliveries
from worker.context import WorkerContext
from worker.execute import claim_run, finish_run
from worker.maintenance import sweep

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def ctx(either_database: str) -> AsyncIterator[WorkerContext]:
    async with worker_context(either_database, "turns") as context:
        yield context


async def _queued(ctx: WorkerContext, session: str | None, k: int, owner: str = "a") -> str:
    run_id = str(uuid.uuid4())
    async with ctx.engine.begin() as conn:
        await conn.execute(
            insert(RUNS).values(
                id=run_id,
                flow_id="prompt",
                flow_version="v1",
                session_id=session,
                owner=owner,
                input=f"turn {k}",
                tweaks={},
                meta={},
                status="queued",
                cached=False,
                attempts=0,
                created_at=T0 + timedelta(seconds=k),
            )
        )
    return run_id


async def _next(ctx: WorkerContext, session: str, owner: str = "a") -> str | None:
    async with ctx.engine.connect() as conn:
        return await next_turn(conn, owner, session)


async def test_a_later_turn_waits_for_every_earlier_one(ctx: WorkerContext) -> None:
    session = f"s-{uuid.uuid4().hex[:6]}"
    first, second, third = [await _queued(ctx, session, k) for k in range(3)]

    assert await claim_run(ctx, second) is None  # the first is still queued
    assert await claim_run(ctx, third) is None
    claimed = await claim_run(ctx, first)
    assert claimed is not None
    assert await claim_run(ctx, second) is None  # the first is running
    assert await _next(ctx, session) is None  # the session's turn is taken

    run, _ = claimed
    result = FlowResult(text="answer one", outputs={})
    assert await finish_run(ctx, run, result=result) is not None
    assert await _next(ctx, session) == second  # its turn now: the finisher enqueues it
    assert await claim_run(ctx, third) is None  # the second is still before it
    claimed_second = await claim_run(ctx, second)
    assert claimed_second is not None
    _, history = claimed_second
    assert [(m.role, m.text) for m in history] == [
        ("user", "turn 0"),
        ("assistant", "answer one"),
    ]


async def test_runs_without_a_session_or_of_other_sessions_are_free(ctx: WorkerContext) -> None:
    session = f"s-{uuid.uuid4().hex[:6]}"
    await _queued(ctx, session, 0)
    other_owner_same_id = await _queued(ctx, session, 1, owner="b")
    other_session = await _queued(ctx, f"{session}-x", 2)
    no_session = await _queued(ctx, None, 3)

    for run_id in (other_owner_same_id, other_session, no_session):
        assert await claim_run(ctx, run_id) is not None


async def test_the_turn_queries_can_use_the_partial_index(
    ctx: WorkerContext, either_database: str
) -> None:
    query = first_unfinished("a", "s")
    compiled = query.compile(ctx.engine, compile_kwargs={"literal_binds": True})
    async with ctx.engine.connect() as conn:
        if either_database.startswith("postgresql"):
            await conn.execute(text("SET enable_seqscan = off"))  # a tiny table: force the choice
            explain = f"EXPLAIN {compiled}"
        else:
            explain = f"EXPLAIN QUERY PLAN {compiled}"
        rows = (await conn.execute(text(explain))).all()
    plan = "\n".join(str(row[-1]) for row in rows)
    assert "ix_runs_session_active" in plan, plan


async def test_the_sweep_brings_a_waiting_turn_whose_wake_up_was_lost(ctx: WorkerContext) -> None:
    """The previous turn ended but its wake-up message never left (Redis away, a worker
    killed between its commit and its enqueue): the sweep re-enqueues the session's next
    turn, and leaves the turns behind it alone (they have no message by design)."""
    session = f"s-{uuid.uuid4().hex[:6]}"
    first, second, third = [await _queued(ctx, session, k) for k in range(3)]
    claimed = await claim_run(ctx, first)
    assert claimed is not None
    assert await finish_run(ctx, claimed[0], result=FlowResult(text="one")) is not None

    unheld = await deliveries.requeue_unheld(ctx)  # the queue is empty, no worker holds them
    lost = await sweep(ctx)  # created long ago: past QUEUED_STALE_S too

    assert second in unheld
    assert third not in unheld
    assert third not in lost
