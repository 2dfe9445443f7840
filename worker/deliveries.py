"""Runs delivered to a worker but not yet claimed: held where the sweep can see them.

A claimed run is protected by its lease: if its worker dies, the lease expires and the
sweep re-queues it. A run the broker delivered but the worker had not claimed yet (waiting
at the admission gate, or its claim on the way) has no lease; after a kill -9 its message
sits in the dead worker's unacknowledged set until the broker's visibility timeout (300 s)
returns it. So each worker publishes what it holds, and when it stops beating:

- ``<ns>deliveries:workers``: sorted set, worker id -> its last heartbeat (Redis's clock,
  the one clock every process shares).
- ``<ns>deliveries:held:<worker id>``: set of the run ids it received and has not finished
  with. A run is added as it arrives (batched, before the admission gate); each heartbeat
  adds what is held and removes what was let go since the last one (never a rewrite, which
  could drop a run announced between the snapshot and the write).

The sweep leader takes every worker whose heartbeat is older than a lease, re-enqueues
those of its held runs the database still has ``queued``, and forgets the worker. A
duplicate message (the broker's own redelivery later, or a worker that was only slow) is
harmless: the claim is conditional, a second delivery of a claimed run does nothing.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from sqlalchemy import select

from shared import fleet
from shared.db_clock import now_plus
from shared.logging import error_text, get_logger
from shared.models import RUNS
from shared.queue import enqueue_run
from shared.run_status import RunStatus
from shared.session_order import turn_is_free

if TYPE_CHECKING:
    from worker.context import WorkerContext

log = get_logger("worker.deliveries")
HELD_TTL_S = 24 * 3600  # a held set outlives its worker only until a sweep forgets it


class HeldRuns:
    """The run ids this process received and is still working on (thread-safe)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._released: set[str] = set()  # let go since the last heartbeat
        self._lock = threading.Lock()

    def add(self, run_id: str) -> None:
        with self._lock:
            self._ids.add(run_id)
            self._released.discard(run_id)

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._ids.discard(run_id)
            self._released.add(run_id)

    def take_changes(self) -> tuple[list[str], list[str]]:
        """(held now, released since the last call)."""
        with self._lock:
            released, self._released = self._released, set()
            return list(self._ids), list(released)

    def unsent(self, released: list[str]) -> None:
        """A heartbeat failed: these releases go with the next one (unless held again)."""
        with self._lock:
            self._released.update(r for r in released if r not in self._ids)


def _workers_key(ctx: WorkerContext) -> str:
    return fleet.workers_key(ctx.settings)  # the API reads it too (GET /v1/fleet)


def _held_key(ctx: WorkerContext, worker_id: str) -> str:
    return fleet.held_key(ctx.settings, worker_id)


async def _redis_now(ctx: WorkerContext) -> float:
    return await fleet.redis_now(ctx.redis)


async def announce(ctx: WorkerContext, run_id: str) -> None:
    """Publish one received run at once (the heartbeat would list it only later)."""
    try:
        await ctx.events.submit("sadd", _held_key(ctx, ctx.worker_id), run_id)
    except Exception as exc:  # the next heartbeat lists it anyway
        log.warning("delivery.announce_failed", run_id=run_id, error=error_text(exc))


async def beat(ctx: WorkerContext) -> None:
    """Say this worker is alive and which runs it holds, in one transaction."""
    now = await _redis_now(ctx)
    held, released = ctx.held.take_changes()
    key = _held_key(ctx, ctx.worker_id)
    try:
        async with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(_workers_key(ctx), {ctx.worker_id: now})
            if released:
                pipe.srem(key, *released)
            if held:
                pipe.sadd(key, *held)
            pipe.expire(key, HELD_TTL_S)
            await pipe.execute()
    except BaseException:
        ctx.held.unsent(released)
        raise


async def forget(ctx: WorkerContext) -> None:
    """A clean stop: this worker holds nothing any more (its runs were handed back)."""
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.zrem(_workers_key(ctx), ctx.worker_id)
        pipe.delete(_held_key(ctx, ctx.worker_id))
        await pipe.execute()


async def requeue_from_dead_workers(ctx: WorkerContext) -> list[str]:
    """Re-enqueue the unclaimed runs of every worker silent for longer than a lease."""
    silent_since = await _redis_now(ctx) - ctx.settings.lease_s
    dead = [
        w.decode() if isinstance(w, bytes) else str(w)
        for w in await ctx.redis.zrangebyscore(_workers_key(ctx), "-inf", silent_since)
    ]
    requeued: list[str] = []
    for worker_id in dead:
        if worker_id == ctx.worker_id:
            continue  # this process is beating; its own beat was only late
        held = [
            r.decode() if isinstance(r, bytes) else str(r)
            for r in await ctx.redis.smembers(_held_key(ctx, worker_id))
        ]
        queued: list[str] = []
        if held:
            async with ctx.sessions() as session:
                queued = list(
                    (
                        await session.scalars(
                            select(RUNS.c.id).where(
                                RUNS.c.id.in_(held), RUNS.c.status == RunStatus.QUEUED
                            )
                        )
                    ).all()
                )
        for run_id in queued:
            await asyncio.to_thread(enqueue_run, ctx.celery, run_id)
        async with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(_workers_key(ctx), worker_id)
            pipe.delete(_held_key(ctx, worker_id))
            await pipe.execute()
        log.warning(
            "worker.dead_deliveries_requeued",
            dead_worker=worker_id,
            held=len(held),
            requeued=len(queued),
        )
        requeued += queued
    return requeued


async def requeue_unheld(ctx: WorkerContext) -> list[str]:
    """Re-enqueue queued runs no message can still bring: none waiting, no live worker holds.

    A worker killed between taking a message off the queue and recording it as
    unacknowledged (kombu's Redis transport does the two apart) loses the message: the
    run stays ``queued`` with nobody to bring it. When the queue is empty (no backlog that
    could still deliver it) and no live worker holds a run queued for two leases, it is
    re-enqueued, at most once per two leases. A backlog is left to ``queued_stale_s``.
    """
    if await ctx.redis.llen(ctx.settings.queue_name) > 0:
        return []
    lease_s = ctx.settings.lease_s
    live_since = await _redis_now(ctx) - lease_s
    live = await ctx.redis.zrangebyscore(_workers_key(ctx), live_since, "+inf")
    held: set[str] = set()
    for worker_id in live:
        name = worker_id.decode() if isinstance(worker_id, bytes) else str(worker_id)
        held |= {
            r.decode() if isinstance(r, bytes) else str(r)
            for r in await ctx.redis.smembers(_held_key(ctx, name))
        }
    async with ctx.sessions() as session:
        stale = (
            await session.scalars(
                select(RUNS.c.id)
                .where(
                    RUNS.c.status == RunStatus.QUEUED,
                    RUNS.c.created_at < now_plus(-2 * lease_s),
                    # A run waiting for its session's earlier turn has no message by design.
                    turn_is_free(RUNS),
                )
                .limit(1000)
            )
        ).all()
    requeued: list[str] = []
    for run_id in stale:
        if run_id in held:
            continue
        mark = ctx.settings.redis_key("deliveries", "requeued", run_id)
        if await ctx.redis.set(mark, "1", nx=True, ex=max(1, int(2 * lease_s))):
            await asyncio.to_thread(enqueue_run, ctx.celery, run_id)
            requeued.append(run_id)
    if requeued:
        log.warning("runs.unheld_requeued", count=len(requeued))
    return requeued
