"""One object per worker process that owns what the process runs on (as arq's Worker does).

Built when the worker starts (``flowfleet worker`` → ``worker.celery_app.create_worker_app``),
never at import: the event loop in its thread, the context (pools, Redis, caches), the
admission gate, the drain that bounds a SIGTERM, and the background duties (heartbeat,
lease renewal, the sweep). Celery's signals call its ``on_*`` methods; tasks reach it
through ``started()``.
"""

from __future__ import annotations

import asyncio
import threading

from celery import Celery

from flows.ingest_ledger import SqlLedger, set_ingest_ledger
from flows.models import close_http_clients, set_limiter
from shared import telemetry
from shared.backend_limits import BackendLimiter
from shared.gc_tuning import tune_gc
from shared.logging import configure_logging, error_text, get_logger
from shared.settings import Settings
from worker.admission import AdmissionGate
from worker.context import LoopThread, WorkerContext, build_context
from worker.deliveries import beat, forget
from worker.maintenance import maintain
from worker.metrics import serve_metrics
from worker.shutdown import Drain

log = get_logger("worker")


class WorkerRuntime:
    """The loop, the context, the gate and the drain of one worker process."""

    def __init__(self, settings: Settings, celery: Celery) -> None:
        self.settings = settings
        self.celery = celery
        self.drain = Drain()
        self.gate = AdmissionGate(settings.worker_concurrency)
        self._lock = threading.Lock()
        self._started: tuple[LoopThread, WorkerContext] | None = None

    def started(self) -> tuple[LoopThread, WorkerContext]:
        """The process's loop and context, started on first use (worker_ready or a task)."""
        with self._lock:
            if self._started is None:
                self._started = self._start()
            return self._started

    def _start(self) -> tuple[LoopThread, WorkerContext]:
        loop = LoopThread()
        ctx = build_context(self.settings, self.celery)
        set_limiter(BackendLimiter(ctx.redis, self.settings, holder_prefix=ctx.worker_id))
        # RAG: ingests done once fleet-wide, the database row as the lock (flows/ingest_ledger.py).
        set_ingest_ledger(
            SqlLedger(ctx.engine, ctx.worker_id, wait_s=self.settings.rag_ingest_wait_s)
        )
        try:
            # Registered as alive before the first delivery can arrive (worker/deliveries.py).
            loop.run(beat(ctx), timeout=10)
        except Exception as exc:  # Redis is away: the maintenance loop beats later
            log.warning("worker.heartbeat_failed", error=error_text(exc))
        asyncio.run_coroutine_threadsafe(maintain(ctx), loop.loop)
        asyncio.run_coroutine_threadsafe(self.gate.watch(), loop.loop)
        serve_metrics(self.settings, ctx.flows)
        tune_gc()
        log.info(
            "worker.started", worker_id=ctx.worker_id, concurrency=self.settings.worker_concurrency
        )
        return loop, ctx

    # Celery signals -------------------------------------------------------------------------

    def on_init(self) -> None:
        configure_logging(self.settings)
        telemetry.init_tracing(self.settings, "worker")

    def on_ready(self) -> None:
        self.started()

    def on_shutting_down(self) -> None:
        # SIGTERM: Celery stops consuming and waits for running tasks; we bound that wait.
        loop, ctx = self._started if self._started is not None else (None, None)
        self.drain.begin(loop, ctx, self.settings.shutdown_grace_s)
        self.gate.wake_all()  # runs still waiting for a place go back to the queue
        log.info(
            "worker.draining",
            in_flight=len(self.drain.in_flight()),
            grace_s=self.settings.shutdown_grace_s,
        )

    def on_shutdown(self) -> None:
        # Runs after the pool has joined, i.e. after every run finished or was handed back;
        # only then is it safe to close the pools and stop the loop under them.
        self.drain.cancel_timer()
        if self._started is None:
            return
        loop, ctx = self._started
        if in_flight := self.drain.in_flight():  # a cold shutdown cut the wait short
            self.drain.hand_back(loop, ctx)
            log.warning("worker.stopped_with_runs", count=len(in_flight))
        else:
            try:
                loop.run(forget(ctx), timeout=5)  # holds nothing: no sweep needed for it
            except Exception as exc:
                log.warning("worker.forget_failed", error=error_text(exc))
        loop.run(ctx.close_pools(), timeout=5)
        loop.run(close_http_clients(), timeout=5)
        loop.stop()
