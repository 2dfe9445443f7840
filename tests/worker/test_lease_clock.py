"""Leases are judged by the database's clock: a sweep leader whose own clock runs far ahead
re-queues nothing, and a worker with a skewed clock still writes leases on the database's
time. A finish retried after its commit acknowledgement was lost finds its own write (so
`done` and the webhook still go out). On PostgreSQL and on SQLite (the embedded default)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from shared.db_clock import now_plus
from shared.errors import FlowError
from shared.models import RUNS
from tests.support.worker_context import worker_context
from worker.context import WorkerContext
from worker.execute import claim_run, finish_run
from worker.maintenance import renew_leases, sweep

LEASE_S = 30.0
SKEW = timedelta(hours=6)


@pytest.fixture
async def ctx(either_database: str) -> AsyncIterator[WorkerContext]:
    async with worker_context(either_database, "clock", lease_s=LEASE_S) as context:
        yield context


async def _queued_run(ctx: WorkerContext) -> str:
    run_id = str(uuid.uuid4())
    async with ctx.engine.begin() as conn:
        await conn.execute(
            insert(RUNS).values(
                id=run_id,
                flow_id="prompt",
                flow_version="v1",
                owner="anonymous",
                input="hi",
                tweaks={},
                meta={},
                status="queued",
                cached=False,
                attempts=0,
                created_at=datetime.now(UTC),
            )
        )
    return run_id


async def _row(ctx: WorkerContext, run_id: str) -> Any:
    async with ctx.engine.connect() as conn:
        return (await conn.execute(select(RUNS).where(RUNS.c.id == run_id))).one()


def _skew_clock(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    def skewed() -> datetime:
        return datetime.now(UTC) + by

    # Every worker module's clock (raising=False: a module that no longer reads it is fine).
    for module in ("shared.models", "worker.execute", "worker.maintenance", "worker.shutdown"):
        monkeypatch.setattr(f"{module}.utcnow", skewed, raising=False)


async def test_a_leader_whose_clock_runs_ahead_requeues_nothing(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs held by healthy workers (leases written on the database's clock)...
    running = [await _queued_run(ctx) for _ in range(3)]
    for run_id in running:
        assert await claim_run(ctx, run_id) is not None
    # ...and a sweep leader whose wall clock is six hours ahead.
    _skew_clock(monkeypatch, SKEW)
    requeued = await sweep(ctx)
    assert not set(requeued) & set(running)
    for run_id in running:
        row = await _row(ctx, run_id)
        assert (row.status, row.lease_owner) == ("running", ctx.worker_id)


async def test_a_skewed_worker_writes_leases_on_the_database_clock(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _skew_clock(monkeypatch, SKEW)
    run_id = await _queued_run(ctx)
    assert await claim_run(ctx, run_id) is not None
    ctx.in_flight.add(run_id)
    assert await renew_leases(ctx) == 1
    row = await _row(ctx, run_id)
    real_now = datetime.now(UTC)
    # Within a lease of the real time, not six hours out.
    assert real_now < row.lease_expires_at < real_now + timedelta(seconds=LEASE_S + 5)


async def test_the_sweep_still_requeues_a_lease_that_really_expired(ctx: WorkerContext) -> None:
    run_id = await _queued_run(ctx)
    assert await claim_run(ctx, run_id) is not None
    async with ctx.engine.begin() as conn:  # the owner died a while ago (database time)
        await conn.execute(
            update(RUNS).where(RUNS.c.id == run_id).values(lease_expires_at=now_plus(-3 * LEASE_S))
        )
    assert run_id in await sweep(ctx)
    assert (await _row(ctx, run_id)).status == "queued"


async def test_a_finish_whose_ack_was_lost_finds_its_own_write(ctx: WorkerContext) -> None:
    run_id = await _queued_run(ctx)
    claimed = await claim_run(ctx, run_id)
    assert claimed is not None
    run, _history = claimed
    finished_at = datetime.now(UTC)
    error = FlowError("boom")
    first = await finish_run(ctx, run, error=error, finished_at=finished_at)
    assert first is not None
    # The retry after a lost acknowledgement matches no row (the lease is released)...
    again = await finish_run(ctx, run, error=error, finished_at=finished_at)
    # ...and still reports the write, so the caller emits `done` and the webhook.
    assert again is not None
    assert (again["status"], again["error_code"]) == ("failed", "flow_error")
    # Another worker's finish (it lost the lease) is still refused.
    ctx.worker_id = "another-worker"
    assert await finish_run(ctx, run, error=error, finished_at=finished_at) is None
    # And a different finish (not this write) is not taken for it.
    ctx.worker_id = (await _row(ctx, run_id)).worker
    later = finished_at + timedelta(seconds=1)
    assert await finish_run(ctx, run, error=error, finished_at=later) is None
