"""Graceful shutdown: on SIGTERM take no new runs, let in-flight ones finish, re-queue the rest.

Celery's warm shutdown already stops consuming and waits for the thread pool's
running tasks, with no bound. ``Drain`` adds the bound: after ``shutdown_grace_s``
the runs still in flight are handed back (status ``queued``, lease released, the
claim not counted against ``max_attempts``) and re-enqueued, then their coroutines
are cancelled; so another worker picks them up at once instead of after the lease
expires. Handing back is conditional on still holding the lease, so a run that
finishes in the same instant is recorded once either way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import update

from shared.db import transaction
from shared.logging import error_text, get_logger
from shared.models import Run
from shared.queue import enqueue_run
from shared.run_status import RunStatus
from worker.context import LoopThread, WorkerContext

log = get_logger("worker.shutdown")


class Drain:
    """What a worker process has in flight, and whether it is shutting down."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self._futures: dict[str, concurrent.futures.Future[str]] = {}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @contextmanager
    def track(self, run_id: str, future: concurrent.futures.Future[str]) -> Iterator[None]:
        with self._lock:
            self._futures[run_id] = future
        try:
            yield
        finally:
            with self._lock:
                self._futures.pop(run_id, None)

    def in_flight(self) -> dict[str, concurrent.futures.Future[str]]:
        with self._lock:
            return dict(self._futures)

    def begin(self, loop: LoopThread | None, ctx: WorkerContext | None, grace_s: float) -> None:
        """Start draining (called from the SIGTERM handler: only sets a flag and a timer)."""
        if self.draining.is_set():
            return
        self.draining.set()
        if loop is None or ctx is None:
            return
        self._timer = threading.Timer(grace_s, self.hand_back, args=(loop, ctx))
        self._timer.daemon = True
        self._timer.start()

    def hand_back(self, loop: LoopThread, ctx: WorkerContext) -> list[str]:
        """Re-queue every run still in flight and cancel its execution."""
        futures = self.in_flight()
        if not futures:
            return []
        try:
            released = loop.run(release(ctx, list(futures)), timeout=15)
        except Exception as exc:  # the database is away: the leases expire and the sweep acts
            log.error("worker.hand_back_failed", error=error_text(exc), runs=len(futures))
            released = []
        for run_id, future in futures.items():
            if run_id in released:
                future.cancel()
        log.warning("worker.runs_handed_back", count=len(released), run_ids=released)
        return released

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


async def release(ctx: WorkerContext, run_ids: list[str]) -> list[str]:
    """Give up this worker's lease on these runs and put them back on the queue."""
    async with transaction(ctx.sessions) as session:
        rows = await session.execute(
            update(Run)
            .where(
                Run.id.in_(run_ids),
                Run.status == RunStatus.RUNNING,
                Run.lease_owner == ctx.worker_id,
            )
            .values(
                status=RunStatus.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                attempts=Run.attempts - 1,  # a shutdown is not the run's fault
            )
            .returning(Run.id)
        )
        released = [row[0] for row in rows.all()]
    for run_id in released:
        await asyncio.to_thread(enqueue_run, ctx.celery, run_id)
    return released
