"""Background duties of a worker process: renew leases, and (one leader) sweep stuck runs."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update

from shared import fleet
from shared.db import transaction
from shared.db_clock import now_plus
from shared.logging import error_text, get_logger
from shared.models import RUNS, Run
from shared.queue import enqueue_run
from shared.run_status import RunStatus
from shared.session_order import turn_is_free
from worker import deliveries
from worker.context import WorkerContext
from worker.scheduler import run_scheduler

log = get_logger("worker.maintenance")
_background: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references


async def renew_leases(ctx: WorkerContext) -> int:
    """Extend the lease of every run this process is executing, in one statement."""
    if not ctx.in_flight:
        return 0
    async with ctx.leases.begin() as conn:
        result = await conn.execute(
            update(RUNS)
            .where(RUNS.c.lease_owner == ctx.worker_id, RUNS.c.status == RunStatus.RUNNING)
            .values(lease_expires_at=now_plus(ctx.settings.lease_s))
        )
    return int(result.rowcount or 0)


async def sweep(ctx: WorkerContext) -> list[str]:
    """Re-enqueue runs whose worker died (lease expired) or whose message was lost.

    Every "before" is on the database's clock (shared/db_clock.py): a leader whose own
    clock runs ahead re-queues nothing that is not really late.
    """
    # One lease of grace: after a database outage the owner's heartbeat renews first.
    expired_before = now_plus(-ctx.settings.lease_s)
    stale_queued = now_plus(-ctx.settings.queued_stale_s)
    async with transaction(ctx.sessions) as session:
        expired = list(
            (
                await session.scalars(
                    select(Run.id).where(
                        Run.status == RunStatus.RUNNING, Run.lease_expires_at < expired_before
                    )
                )
            ).all()
        )
        if expired:
            await session.execute(
                update(Run)
                .where(
                    Run.id.in_(expired),
                    Run.status == RunStatus.RUNNING,
                    Run.lease_expires_at < expired_before,
                )
                .values(status=RunStatus.QUEUED, lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
        lost = list(
            (
                await session.scalars(
                    select(Run.id).where(
                        Run.status == RunStatus.QUEUED,
                        Run.created_at < stale_queued,
                        turn_is_free(RUNS),  # waiting for its session's turn is not lost
                    )
                )
            ).all()
        )
    requeue = expired + [run_id for run_id in lost if await _first_requeue(ctx, run_id)]
    # Delivered to a worker that died before claiming them: no lease to expire (deliveries.py).
    orphaned = await deliveries.requeue_from_dead_workers(ctx)
    orphaned += await deliveries.requeue_unheld(ctx)  # lost between queue and record
    for run_id in requeue:
        await asyncio.to_thread(enqueue_run, ctx.celery, run_id)
    if requeue:
        log.warning("runs.requeued", expired=len(expired), lost=len(requeue) - len(expired))
    return requeue + orphaned


async def _first_requeue(ctx: WorkerContext, run_id: str) -> bool:
    # A long queue is not a lost message: re-enqueue a queued run at most once per bound.
    key = ctx.settings.redis_key("requeued", run_id)
    return bool(await ctx.redis.set(key, "1", nx=True, ex=int(ctx.settings.queued_stale_s)))


async def _is_leader(ctx: WorkerContext) -> bool:
    key = ctx.settings.redis_key("sweep-leader")
    ttl = max(1, int(ctx.settings.sweep_interval_s * 2))
    if await ctx.redis.set(key, ctx.worker_id, nx=True, ex=ttl):
        return True
    holder = await ctx.redis.get(key)
    if holder is not None and _text(holder) == ctx.worker_id:
        await ctx.redis.expire(key, ttl)
        return True
    return False


async def maintain(ctx: WorkerContext) -> None:
    """Forever: renew leases every third of a lease; sweep when this process leads."""
    if ctx.settings.scheduler_enabled:  # its own loop and lock: it ticks faster than the sweep
        _background.add(asyncio.create_task(run_scheduler(ctx)))
    heartbeat = max(0.5, ctx.settings.lease_s / 3)
    next_sweep = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            await deliveries.beat(ctx)  # Redis only: it goes on while the database is away
        except Exception as exc:
            log.warning("worker.heartbeat_failed", error=error_text(exc))
        try:
            await renew_leases(ctx)
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + ctx.settings.sweep_interval_s
                if await _is_leader(ctx):
                    await sweep(ctx)
                    await fleet.record_queue_depth(ctx.redis, ctx.settings)  # the chart's history
        except Exception as exc:  # the database or Redis is away; try again next beat
            log.warning("worker.maintenance_failed", error=error_text(exc))
        await asyncio.sleep(min(heartbeat, ctx.settings.sweep_interval_s))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
